package registry

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// funcSource is a Source driven by the test.
type funcSource struct {
	name string
	run  func(ctx context.Context, sink Sink)
}

func (s funcSource) Name() string { return s.name }

func (s funcSource) Run(ctx context.Context, sink Sink) error {
	s.run(ctx, sink)
	<-ctx.Done()
	return nil
}

// pushes records what a Mixer published.
type pushes struct {
	mu  sync.Mutex
	at  []time.Time
	ins []*translate.Input
	ch  chan struct{}
}

func newPushes() *pushes { return &pushes{ch: make(chan struct{}, 1<<16)} }

func (p *pushes) publish(in *translate.Input) error {
	p.mu.Lock()
	p.at = append(p.at, time.Now())
	p.ins = append(p.ins, in)
	p.mu.Unlock()
	p.ch <- struct{}{}
	return nil
}

func (p *pushes) last() (*translate.Input, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ins[len(p.ins)-1], len(p.ins)
}

// endpoints counts the endpoints of the host in a published Input.
func endpointsOf(in *translate.Input, host string) int {
	for _, se := range in.ServiceEntries {
		if len(se.Spec.Hosts) == 1 && string(se.Spec.Hosts[0]) == host {
			return len(se.Spec.Endpoints)
		}
	}
	return -1
}

func waitPush(t *testing.T, p *pushes, ok func(*translate.Input) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if in, n := p.last(); n > 0 && ok(in) {
			return
		}
		select {
		case <-p.ch:
		case <-deadline:
			t.Fatal("timed out waiting for a push")
		}
	}
}

// A provider flapping as fast as it can gives pushes at least a debounce
// apart, and its last state is published. (A window that ends in the
// state last published pushes nothing, so the count is not fixed.)
func TestMixerFlappingProvider(t *testing.T) {
	const debounce = 20 * time.Millisecond
	p := newPushes()
	stopFlap := make(chan struct{})
	flapped := make(chan struct{})
	provider := prov("com.x.I", "10.0.0.1", 20880, "")
	src := funcSource{name: zk1, run: func(ctx context.Context, sink Sink) {
		go func() {
			defer close(flapped)
			for i := 0; ; i++ {
				select {
				case <-stopFlap:
					sink.ReplaceInterface(zk1, "com.x.I", []Provider{provider}) // ends registered
					return
				case <-time.After(time.Millisecond):
				}
				if i%2 == 0 {
					sink.ReplaceInterface(zk1, "com.x.I", nil)
				} else {
					sink.ReplaceInterface(zk1, "com.x.I", []Provider{provider})
				}
			}
		}()
	}}
	m := &Mixer{Sources: []Source{src}, Debounce: debounce, MaxDelay: 3 * debounce, Publish: p.publish}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := m.SetBase(&translate.Input{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * debounce) // the flapping goes on this long: a duration of the test, not a bound checked
	close(stopFlap)
	<-flapped
	waitPush(t, p, func(in *translate.Input) bool { return endpointsOf(in, "com.x.I") == 1 })

	p.mu.Lock()
	defer p.mu.Unlock()
	// The first push is SetBase's, at once; the registry's follow.
	for i := 2; i < len(p.at); i++ {
		if gap := p.at[i].Sub(p.at[i-1]); gap < debounce {
			t.Errorf("pushes %d and %d only %v apart, under the %v debounce", i-1, i, gap, debounce)
		}
	}
	t.Logf("%d pushes over %d flaps", len(p.at), 20*debounce/time.Millisecond)
}

// A registry that goes unavailable keeps its providers in force; the
// next full listing replaces them.
func TestMixerUnavailableKeepsProviders(t *testing.T) {
	p := newPushes()
	sinkc := make(chan Sink, 1)
	src := funcSource{name: zk1, run: func(_ context.Context, sink Sink) { sinkc <- sink }}
	metrics := NewMetrics()
	m := &Mixer{Sources: []Source{src}, Debounce: time.Millisecond, Publish: p.publish, Metrics: metrics}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	_ = m.SetBase(&translate.Input{})
	sink := <-sinkc
	sink.ReplaceAll(zk1, map[string][]Provider{"com.x.I": {prov("", "10.0.0.1", 1, ""), prov("", "10.0.0.2", 1, "")}})
	sink.Available(zk1, true)
	waitPush(t, p, func(in *translate.Input) bool { return endpointsOf(in, "com.x.I") == 2 })
	sink.Available(zk1, false)
	if n := testGauge(metrics, zk1); n != 0 {
		t.Fatalf("metamesh_registry_up %v while unavailable", n)
	}
	in, _ := p.last()
	if endpointsOf(in, "com.x.I") != 2 {
		t.Fatal("endpoints dropped when the registry went unavailable")
	}
	sink.ReplaceAll(zk1, map[string][]Provider{"com.x.J": {prov("", "10.0.0.3", 1, "")}})
	waitPush(t, p, func(in *translate.Input) bool {
		return endpointsOf(in, "com.x.I") == -1 && endpointsOf(in, "com.x.J") == 1
	})
}

func testGauge(m *Metrics, reg string) float64 {
	return testutil.ToFloat64(m.Up.WithLabelValues(reg))
}

// annotationOf is the UnreachableAnnotation of the ServiceEntry of host in
// a published Input ("" if none; "no entry" if the host has none).
func annotationOf(in *translate.Input, host string) string {
	for _, se := range in.ServiceEntries {
		if len(se.Spec.Hosts) == 1 && string(se.Spec.Hosts[0]) == host {
			return se.Annotations[UnreachableAnnotation]
		}
	}
	return "no entry"
}

// A registry that goes away flags, by itself (no other change), the
// ServiceEntries that take endpoints from it, made and filled, naming it
// and when it went; the flag goes when it is back. A ServiceEntry fed
// only by another registry is not flagged, and the base is not modified.
func TestMixerFlagsUnreachableRegistry(t *testing.T) {
	p := newPushes()
	sinkc := make(chan Sink, 1)
	src := funcSource{name: zk1, run: func(_ context.Context, sink Sink) { sinkc <- sink }}
	went := time.Date(2026, 12, 4, 16, 0, 0, 0, time.FixedZone("x", 3600))
	m := &Mixer{Sources: []Source{src}, Debounce: time.Millisecond, Publish: p.publish, Now: func() time.Time { return went }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	filled := entry("filled", []string{"com.x.F"}, 20880)
	base := &translate.Input{ServiceEntries: []*v1alpha1.ServiceEntry{filled, entry("other", []string{"com.x.O"}, 20880)}}
	_ = m.SetBase(base)
	sink := <-sinkc
	sink.ReplaceAll(zk1, map[string][]Provider{
		"com.x.I": {prov("", "10.0.0.1", 1, "")},
		"com.x.F": {prov("", "10.0.0.2", 1, "")},
	})
	sink.ReplaceAll(zk2, map[string][]Provider{
		"com.x.F": {prov("", "10.0.0.3", 1, "")},
		"com.x.O": {prov("", "10.0.0.4", 1, "")},
	})
	sink.Available(zk1, true)
	sink.Available(zk2, true)
	waitPush(t, p, func(in *translate.Input) bool {
		return endpointsOf(in, "com.x.I") == 1 && endpointsOf(in, "com.x.F") == 2 && endpointsOf(in, "com.x.O") == 1
	})
	in, _ := p.last()
	for _, h := range []string{"com.x.I", "com.x.F", "com.x.O"} {
		if a := annotationOf(in, h); a != "" {
			t.Fatalf("%s flagged while every registry is up: %q", h, a)
		}
	}

	sink.Available(zk1, false)
	want := "endpoints are the last known from " + zk1 + " since 2026-12-04T15:00:00Z"
	waitPush(t, p, func(in *translate.Input) bool { return annotationOf(in, "com.x.I") != "" })
	in, _ = p.last()
	for _, h := range []string{"com.x.I", "com.x.F"} {
		if a := annotationOf(in, h); a != want {
			t.Errorf("%s: %s = %q, want %q", h, UnreachableAnnotation, a, want)
		}
	}
	if a := annotationOf(in, "com.x.O"); a != "" {
		t.Errorf("com.x.O (only from %s, which is up) flagged: %q", zk2, a)
	}
	if endpointsOf(in, "com.x.I") != 1 || endpointsOf(in, "com.x.F") != 2 {
		t.Error("endpoints dropped when the registry went away")
	}
	if _, ok := filled.Annotations[UnreachableAnnotation]; ok || len(filled.Spec.Endpoints) != 0 {
		t.Error("the base's ServiceEntry was modified")
	}

	sink.Available(zk1, true)
	waitPush(t, p, func(in *translate.Input) bool { return annotationOf(in, "com.x.I") == "" })
	in, _ = p.last()
	if a := annotationOf(in, "com.x.F"); a != "" {
		t.Errorf("com.x.F still flagged with its registry back: %q", a)
	}
}
