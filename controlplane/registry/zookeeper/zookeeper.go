// Package zookeeper is the ZooKeeper registry source: it watches the
// providers Dubbo registers under ROOT/<interface>/providers, with child
// watches on ROOT and on each providers node (an existence watch while a
// providers node is absent), and lists everything again after a new
// session.
package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/registry"
)

// DefaultSessionTimeout is the ZooKeeper session timeout asked for. The
// server may cap it (maxSessionTimeout).
const DefaultSessionTimeout = 10 * time.Second

// retryDelay is how long a failed listing waits before it is tried again
// while the session is up (a connection lost mid-listing, a throttled
// server).
const retryDelay = time.Second

// Source watches one ZooKeeper ensemble. Build it with New.
type Source struct {
	target registry.Target
	log    *zap.Logger
	// SessionTimeout is the session timeout asked for (DefaultSessionTimeout
	// if zero).
	SessionTimeout time.Duration
}

// New makes the source of a zookeeper:// target.
func New(t registry.Target, log *zap.Logger) (*Source, error) {
	if t.Scheme != "zookeeper" {
		return nil, fmt.Errorf("zookeeper: %s is not a zookeeper:// registry", t.URL)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Source{target: t, log: log.With(zap.String("registry", t.URL))}, nil
}

// Name implements registry.Source.
func (s *Source) Name() string { return s.target.URL }

// Run implements registry.Source.
func (s *Source) Run(ctx context.Context, sink registry.Sink) error {
	timeout := s.SessionTimeout
	if timeout <= 0 {
		timeout = DefaultSessionTimeout
	}
	conn, session, err := zk.Connect(s.target.Hosts, timeout, zk.WithLogger(zkLogger{s.log}), zk.WithLogInfo(false))
	if err != nil {
		return fmt.Errorf("zookeeper: %s: %w", s.target.URL, err)
	}
	defer conn.Close()
	w := &watcher{
		conn: conn, sink: sink, log: s.log, name: s.target.URL, root: s.target.Root,
		fired: make(chan fired), armed: map[string]uint64{}, known: map[string]bool{},
	}
	return w.loop(ctx, session)
}

// fired is a watch that fired, with the generation it was armed under.
type fired struct {
	key string
	gen uint64
	ev  zk.Event
}

// watcher is the state of one Run, owned by its loop's goroutine.
type watcher struct {
	conn *zk.Conn
	sink registry.Sink
	log  *zap.Logger
	name string
	root string

	ctx   context.Context
	fired chan fired
	armed map[string]uint64 // watch key ("c:" or "e:" + path) → generation
	gen   uint64
	known map[string]bool // interfaces under root, as last listed
	// needSync: the watches or the view may be incomplete; list
	// everything again once the session is up.
	needSync bool
}

func (w *watcher) loop(ctx context.Context, session <-chan zk.Event) error {
	w.ctx = ctx
	w.needSync = true
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-session:
			switch ev.State {
			case zk.StateHasSession:
				if w.needSync {
					w.sync(retry)
				} else {
					w.sink.Available(w.name, true)
				}
			case zk.StateExpired:
				w.needSync = true
				w.sink.Available(w.name, false)
			case zk.StateDisconnected:
				w.sink.Available(w.name, false)
			}
		case f := <-w.fired:
			if w.armed[f.key] != f.gen {
				continue // a watch of an earlier session, replaced since
			}
			delete(w.armed, f.key)
			w.handle(f, retry)
		case <-retry.C:
			if w.needSync && w.conn.State() == zk.StateHasSession {
				w.sync(retry)
			}
		}
	}
}

// handle reacts to one watch event.
func (w *watcher) handle(f fired, retry *time.Timer) {
	if f.ev.Type == zk.EventNotWatching {
		// The session expired (or the client is closing): every watch is
		// gone. Wait a moment so that the others' events coalesce.
		w.needSync = true
		retry.Reset(50 * time.Millisecond)
		return
	}
	if w.needSync {
		return // a full listing is due anyway
	}
	var err error
	if f.ev.Path == w.root {
		err = w.relistRoot()
	} else if iface := w.ifaceOf(f.ev.Path); iface != "" && w.known[iface] {
		var ps []registry.Provider
		if ps, err = w.providers(iface); err == nil {
			w.sink.ReplaceInterface(w.name, iface, ps)
		}
	}
	if err != nil {
		w.failed(err, retry)
	}
}

func (w *watcher) failed(err error, retry *time.Timer) {
	w.log.Warn("zookeeper listing failed; listing everything again once it answers", zap.Error(err))
	w.needSync = true
	retry.Reset(retryDelay)
}

// sync lists every interface and its providers with fresh watches and
// replaces the registry's view; on failure the last view stays.
func (w *watcher) sync(retry *time.Timer) {
	w.armed = map[string]uint64{}
	ifaces, err := w.listRoot()
	if err != nil {
		w.failed(err, retry)
		return
	}
	all := make(map[string][]registry.Provider, len(ifaces))
	known := make(map[string]bool, len(ifaces))
	for _, iface := range ifaces {
		known[iface] = true
		ps, err := w.providers(iface)
		if err != nil {
			w.failed(err, retry)
			return
		}
		if len(ps) > 0 {
			all[iface] = ps
		}
	}
	w.known = known
	w.needSync = false
	w.sink.ReplaceAll(w.name, all)
	w.sink.Available(w.name, true)
	w.log.Debug("zookeeper listed", zap.Int("interfaces", len(ifaces)))
}

// relistRoot lists the interfaces again after ROOT's children changed:
// new ones are listed and watched, gone ones dropped.
func (w *watcher) relistRoot() error {
	ifaces, err := w.listRoot()
	if err != nil {
		return err
	}
	now := make(map[string]bool, len(ifaces))
	for _, iface := range ifaces {
		now[iface] = true
		if w.known[iface] {
			continue
		}
		ps, err := w.providers(iface)
		if err != nil {
			return err
		}
		w.known[iface] = true
		w.sink.ReplaceInterface(w.name, iface, ps)
	}
	for iface := range w.known {
		if !now[iface] {
			delete(w.known, iface)
			w.sink.ReplaceInterface(w.name, iface, nil)
		}
	}
	return nil
}

// listRoot returns ROOT's children, watching them (or ROOT's creation).
func (w *watcher) listRoot() ([]string, error) {
	names, err := w.children(w.root)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, w.watchExists(w.root)
	}
	return names, err
}

// providers lists the providers of iface, watching them (or the
// providers node's creation).
func (w *watcher) providers(iface string) ([]registry.Provider, error) {
	p := path.Join(w.root, iface, "providers")
	names, err := w.children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, w.watchExists(p)
	}
	if err != nil {
		return nil, err
	}
	ps := make([]registry.Provider, 0, len(names))
	for _, n := range names {
		pr, err := registry.ParseProvider(n)
		if err != nil {
			if !errors.Is(err, registry.ErrNotDubbo) {
				w.log.Warn("provider node ignored", zap.String("interface", iface), zap.Error(err))
			}
			continue
		}
		ps = append(ps, pr)
	}
	return ps, nil
}

// children lists p's children, arming a child watch unless one is armed.
func (w *watcher) children(p string) ([]string, error) {
	key := "c:" + p
	if _, ok := w.armed[key]; ok {
		names, _, err := w.conn.Children(p)
		return names, err
	}
	names, _, ch, err := w.conn.ChildrenW(p)
	if err != nil {
		return nil, err
	}
	w.arm(key, ch)
	return names, nil
}

// watchExists arms an existence watch on p (its creation), unless one is.
func (w *watcher) watchExists(p string) error {
	key := "e:" + p
	if _, ok := w.armed[key]; ok {
		return nil
	}
	exists, _, ch, err := w.conn.ExistsW(p)
	if err != nil {
		return err
	}
	w.arm(key, ch)
	if exists {
		// Created between the listing and the watch: list again.
		return fmt.Errorf("zookeeper: %s created while being listed", p)
	}
	return nil
}

// arm forwards ch's one event to the loop.
func (w *watcher) arm(key string, ch <-chan zk.Event) {
	w.gen++
	gen := w.gen
	w.armed[key] = gen
	go func() {
		ev, ok := <-ch
		if !ok {
			return
		}
		select {
		case w.fired <- fired{key: key, gen: gen, ev: ev}:
		case <-w.ctx.Done():
		}
	}()
}

// ifaceOf is the interface of ROOT/<interface>/providers, or "".
func (w *watcher) ifaceOf(p string) string {
	dir, last := path.Split(p)
	if last != "providers" {
		return ""
	}
	parent, iface := path.Split(path.Clean(dir))
	if path.Clean(parent) != w.root {
		return ""
	}
	return iface
}

// zkLogger sends the client library's log lines to zap at debug level:
// its connection chatter is not news; the source logs what matters.
type zkLogger struct{ log *zap.Logger }

func (l zkLogger) Printf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }

var _ registry.Source = (*Source)(nil)
