// Package zookeeper is the ZooKeeper registry source. It watches the
// providers Dubbo registers under ROOT/<interface>/providers (child watches
// on ROOT and on each providers node, an existence watch while a providers
// node is absent) and, for Dubbo 3's application-level registration, the
// interface→application mappings under ROOT/mapping, the instances under
// /services/<application> and their applications' metadata (apps.go). It
// lists everything again after a new session.
package zookeeper

import (
	"context"
	"errors"
	"fmt"
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
		services: ServicesRoot(s.target.Root), fired: make(chan fired), armed: map[string]armed{},
	}
	w.reset()
	return w.loop(ctx, session)
}

// fired is a watch that fired, with the generation it was armed under.
type fired struct {
	key string
	gen uint64
	ev  zk.Event
}

// armed is a watch waiting to fire: its generation, and what to do then.
type armed struct {
	gen    uint64
	onFire func() error
}

// watcher is the state of one Run, owned by its loop's goroutine.
type watcher struct {
	conn     *zk.Conn
	sink     registry.Sink
	log      *zap.Logger
	name     string
	root     string
	services string // where application instances are registered

	ctx   context.Context
	fired chan fired
	armed map[string]armed // watch key ("c:", "d:" or "e:" + path)
	gen   uint64
	// index is the registry as listed; dirty are the interfaces whose
	// providers may have changed since the sink was last told.
	index *registry.Index
	dirty map[string]bool
	known map[string]bool // interfaces under root, as last listed
	apps  appState
	// needSync: the watches or the view may be incomplete; list
	// everything again once the session is up.
	needSync bool
}

// reset forgets everything listed, before a full listing.
func (w *watcher) reset() {
	w.armed = map[string]armed{}
	w.index = registry.NewIndex()
	w.dirty = map[string]bool{}
	w.known = map[string]bool{}
	w.apps = appState{mapped: map[string]bool{}, watched: map[string]bool{}}
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
			a, ok := w.armed[f.key]
			if !ok || a.gen != f.gen {
				continue // a watch of an earlier session, replaced since
			}
			delete(w.armed, f.key)
			w.handle(f, a, retry)
		case <-retry.C:
			if w.needSync && w.conn.State() == zk.StateHasSession {
				w.sync(retry)
			}
		}
	}
}

// handle reacts to one watch event.
func (w *watcher) handle(f fired, a armed, retry *time.Timer) {
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
	if err := a.onFire(); err != nil {
		w.failed(err, retry)
		return
	}
	w.flush()
}

// flush tells the sink the providers of each dirty interface.
func (w *watcher) flush() {
	for iface := range w.dirty {
		w.sink.ReplaceInterface(w.name, iface, w.index.Providers(iface))
	}
	w.dirty = map[string]bool{}
}

func (w *watcher) failed(err error, retry *time.Timer) {
	w.log.Warn("zookeeper listing failed; listing everything again once it answers", zap.Error(err))
	w.needSync = true
	retry.Reset(retryDelay)
}

// sync lists everything with fresh watches and replaces the registry's
// view; on failure the last view stays.
func (w *watcher) sync(retry *time.Timer) {
	w.reset()
	ifaces, err := w.syncInterfaces()
	if err == nil {
		err = w.syncApps()
	}
	if err != nil {
		w.failed(err, retry)
		return
	}
	w.needSync = false
	w.dirty = map[string]bool{}
	w.sink.ReplaceAll(w.name, w.index.All())
	w.sink.Available(w.name, true)
	w.log.Debug("zookeeper listed", zap.Int("interfaces", ifaces), zap.Int("mapped", len(w.apps.mapped)))
}

// children lists p's children, arming a child watch that calls onFire
// unless one is armed.
func (w *watcher) children(p string, onFire func() error) ([]string, error) {
	key := "c:" + p
	if _, ok := w.armed[key]; ok {
		names, _, err := w.conn.Children(p)
		return names, err
	}
	names, _, ch, err := w.conn.ChildrenW(p)
	if err != nil {
		return nil, err
	}
	w.arm(key, ch, onFire)
	return names, nil
}

// childrenOrWait lists p's children like children, or arms an existence
// watch calling onFire when p does not exist (nil names, nil error).
func (w *watcher) childrenOrWait(p string, onFire func() error) ([]string, error) {
	names, err := w.children(p, onFire)
	if errors.Is(err, zk.ErrNoNode) {
		if exists, err := w.watchExists(p, onFire); err != nil || exists {
			// Created between the listing and the watch: list again.
			return nil, errors.Join(err, fmt.Errorf("zookeeper: %s created while being listed", p))
		}
		return nil, nil
	}
	return names, err
}

// get reads p's data, arming a data watch that calls onFire unless one is
// armed.
func (w *watcher) get(p string, onFire func() error) ([]byte, error) {
	key := "d:" + p
	if _, ok := w.armed[key]; ok {
		data, _, err := w.conn.Get(p)
		return data, err
	}
	data, _, ch, err := w.conn.GetW(p)
	if err != nil {
		return nil, err
	}
	w.arm(key, ch, onFire)
	return data, nil
}

// watchExists arms an existence watch on p calling onFire (unless one is
// armed) and reports whether p exists.
func (w *watcher) watchExists(p string, onFire func() error) (bool, error) {
	key := "e:" + p
	if _, ok := w.armed[key]; ok {
		exists, _, err := w.conn.Exists(p)
		return exists, err
	}
	exists, _, ch, err := w.conn.ExistsW(p)
	if err != nil {
		return false, err
	}
	w.arm(key, ch, onFire)
	return exists, nil
}

// arm forwards ch's one event to the loop, which calls onFire.
func (w *watcher) arm(key string, ch <-chan zk.Event, onFire func() error) {
	w.gen++
	gen := w.gen
	w.armed[key] = armed{gen: gen, onFire: onFire}
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

// zkLogger sends the client library's log lines to zap at debug level:
// its connection chatter is not news; the source logs what matters.
type zkLogger struct{ log *zap.Logger }

func (l zkLogger) Printf(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }

var _ registry.Source = (*Source)(nil)
