package registry

import (
	"context"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/translate"
)

// DefaultMaxDelay bounds how long a steady stream of registry changes (a
// flapping provider) can hold a push back.
const DefaultMaxDelay = time.Second

// Mixer merges the providers its sources report into the Input of another
// config source and publishes the result: at once when that Input
// changes (SetBase), and after Debounce of quiet (at most MaxDelay after
// the first) when the providers change. Pushes caused by the registries
// are at least Debounce apart. Set the exported fields, then call Run.
type Mixer struct {
	// Sources are the registries to watch.
	Sources []Source
	// Debounce is the quiet time after a registry change before a push.
	Debounce time.Duration
	// MaxDelay is the longest a push waits for quiet (DefaultMaxDelay if
	// zero, never less than Debounce).
	MaxDelay time.Duration
	// ListenPorts maps a registry URL to Target.Port, for Merge.
	ListenPorts map[string]int
	// Publish puts a merged Input in force; calls are one at a time.
	Publish func(*translate.Input) error
	// Log receives registry availability and merge notes (nop if nil).
	Log *zap.Logger
	// Metrics, if set, are kept up to date.
	Metrics *Metrics
	// Now is the clock that dates a registry going away (time.Now if nil).
	Now func() time.Time

	once    sync.Once
	mu      sync.Mutex // guards regs
	regs    map[string]*regState
	changed chan struct{}

	pubMu     sync.Mutex // serializes publishes; guards the fields below
	base      *translate.Input
	published []Provider
	pubDown   map[string]time.Time
	notes     []string
	stale     map[string]string // ServiceEntry key → UnreachableAnnotation, as last logged

	conds        atomic.Pointer[map[string]metav1.Condition] // RegistryConditions
	condsChanged chan struct{}                               // capacity 1: RegistryChanged
}

type regState struct {
	byIface map[string][]Provider
	up      bool
	count   int
	// downSince is when the registry was last seen going away (zero while
	// it is up, and before it was ever up).
	downSince time.Time
}

func (m *Mixer) init() {
	m.once.Do(func() {
		m.regs = map[string]*regState{}
		m.changed = make(chan struct{}, 1)
		m.condsChanged = make(chan struct{}, 1)
		if m.Log == nil {
			m.Log = zap.NewNop()
		}
	})
}

// Run watches every source and publishes on changes until ctx ends. It
// returns the first error of a source that can't run at all.
func (m *Mixer) Run(ctx context.Context) error {
	m.init()
	for _, s := range m.Sources {
		m.Available(s.Name(), false)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(m.Sources))
	var wg sync.WaitGroup
	for _, s := range m.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx, m); err != nil {
				errs <- err
			}
		}()
	}
	defer wg.Wait()
	debounce := max(m.Debounce, time.Millisecond)
	maxDelay := max(m.MaxDelay, debounce)
	if m.MaxDelay == 0 {
		maxDelay = max(DefaultMaxDelay, debounce)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time
	pending := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return err
		case <-m.changed:
			now := time.Now()
			if !pending {
				pending, first = true, now
			}
			timer.Reset(max(min(debounce, first.Add(maxDelay).Sub(now)), 0))
		case <-timer.C:
			pending = false
			m.pubMu.Lock()
			if m.base != nil {
				if m.publishLocked() && m.Metrics != nil {
					m.Metrics.Pushes.Inc()
				}
			}
			m.pubMu.Unlock()
		}
	}
}

// SetBase sets the Input of the other config source and publishes it
// merged with the providers; it returns Publish's error.
func (m *Mixer) SetBase(base *translate.Input) error {
	m.init()
	m.pubMu.Lock()
	defer m.pubMu.Unlock()
	m.base = base
	m.published = nil
	return m.publish()
}

// publishLocked publishes when the providers changed since the last push,
// and reports whether it did.
func (m *Mixer) publishLocked() bool {
	ps, down := m.snapshot()
	if reflect.DeepEqual(ps, m.published) && reflect.DeepEqual(down, m.pubDown) && m.published != nil {
		return false
	}
	if err := m.publish(); err != nil {
		m.Log.Error("config with the registries' providers not applied", zap.Error(err))
	}
	return true
}

func (m *Mixer) publish() error {
	ps, down := m.snapshot()
	out := Merge(m.base, ps, m.ListenPorts)
	if !reflect.DeepEqual(out.Notes, m.notes) {
		for _, n := range out.Notes {
			m.Log.Warn("registry providers not applied", zap.String("note", n))
		}
		m.notes = out.Notes
	}
	flagged := flagUnreachable(out.Input, ps, down)
	m.logStale(flagged)
	m.setConditions(conditions(m.base, out.Input, flagged))
	m.published, m.pubDown = ps, down
	if m.published == nil {
		m.published = []Provider{}
	}
	return m.Publish(out.Input)
}

// snapshot is every provider of every registry, in a stable order, and
// when each registry that went away (and has providers kept) did.
func (m *Mixer) snapshot() ([]Provider, map[string]time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	var down map[string]time.Time
	for name, r := range m.regs {
		n += r.count
		if !r.up && !r.downSince.IsZero() && r.count > 0 {
			if down == nil {
				down = map[string]time.Time{}
			}
			down[name] = r.downSince
		}
	}
	out := make([]Provider, 0, n)
	for _, r := range m.regs {
		for _, ps := range r.byIface {
			out = append(out, ps...)
		}
	}
	sortProviders(out)
	return out, down
}

// logStale logs each ServiceEntry newly flagged by flagUnreachable, or
// whose flag changed or went, once.
func (m *Mixer) logStale(now map[string]string) {
	keys := make([]string, 0, len(now)+len(m.stale))
	for k := range now {
		keys = append(keys, k)
	}
	for k := range m.stale {
		if _, ok := now[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch msg, ok := now[k]; {
		case !ok:
			m.Log.Info("registry back: endpoints current again", zap.String("object", k))
		case msg != m.stale[k]:
			m.Log.Warn("registry unreachable: endpoints are the last known", zap.String("object", k), zap.String("status", msg))
		}
	}
	m.stale = now
}

// ReplaceAll implements Sink.
func (m *Mixer) ReplaceAll(registry string, byInterface map[string][]Provider) {
	m.init()
	m.mu.Lock()
	r := m.state(registry)
	r.byIface = map[string][]Provider{}
	r.count = 0
	for iface, ps := range byInterface {
		m.setLocked(r, registry, iface, ps)
	}
	m.mu.Unlock()
	m.notify()
}

// ReplaceInterface implements Sink.
func (m *Mixer) ReplaceInterface(registry, iface string, providers []Provider) {
	m.init()
	m.mu.Lock()
	m.setLocked(m.state(registry), registry, iface, providers)
	m.mu.Unlock()
	m.notify()
}

// Available implements Sink.
func (m *Mixer) Available(registry string, up bool) {
	m.init()
	m.mu.Lock()
	r := m.state(registry)
	was, count := r.up, r.count
	r.up = up
	changed := false
	switch {
	case up && !r.downSince.IsZero():
		r.downSince, changed = time.Time{}, true
	case !up && was:
		r.downSince, changed = m.now(), true
	}
	m.mu.Unlock()
	if changed {
		m.notify()
	}
	if m.Metrics != nil {
		v := 0.0
		if up {
			v = 1
		}
		m.Metrics.Up.WithLabelValues(registry).Set(v)
	}
	switch {
	case up && !was:
		m.Log.Info("registry watched", zap.String("registry", registry))
	case !up && was:
		m.Log.Warn("registry unreachable; its last known providers stay in force", zap.String("registry", registry), zap.Int("providers", count))
	}
}

func (m *Mixer) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func (m *Mixer) state(registry string) *regState {
	r := m.regs[registry]
	if r == nil {
		r = &regState{byIface: map[string][]Provider{}}
		m.regs[registry] = r
	}
	return r
}

func (m *Mixer) setLocked(r *regState, registry, iface string, ps []Provider) {
	r.count -= len(r.byIface[iface])
	if len(ps) == 0 {
		delete(r.byIface, iface)
	} else {
		cp := make([]Provider, len(ps))
		for i, p := range ps {
			p.Registry, p.Interface = registry, iface
			cp[i] = p
		}
		r.byIface[iface] = cp
		r.count += len(cp)
	}
	if m.Metrics != nil {
		m.Metrics.Providers.WithLabelValues(registry).Set(float64(r.count))
	}
}

func (m *Mixer) notify() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

var _ Sink = (*Mixer)(nil)
