package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/registry"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// serviceEntry is a valid ServiceEntry of host on a dubbo port.
func serviceEntry(name, host string) *v1alpha1.ServiceEntry {
	return &v1alpha1.ServiceEntry{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1alpha1.ServiceEntrySpec{
			Hosts:     []v1alpha1.Host{v1alpha1.Host(host)},
			Ports:     []v1alpha1.ServicePort{{Number: 20880, Name: "dubbo", Protocol: "dubbo"}},
			Endpoints: []v1alpha1.Endpoint{{Address: "127.0.0.1"}},
		},
	}
}

// routerTo is a MetaRouter of host whose one route goes to host.
func routerTo(name, host string) *v1alpha1.MetaRouter {
	return &v1alpha1.MetaRouter{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1alpha1.MetaRouterSpec{
			Hosts:  []v1alpha1.Host{v1alpha1.Host(host)},
			Routes: []v1alpha1.MetaRoute{{Name: "all", Route: []v1alpha1.WeightedDestination{{Destination: v1alpha1.Destination{Host: v1alpha1.Host(host)}}}}},
		},
	}
}

// once is a source that publishes objs, hands publish's error to got, and
// waits for ctx.
func once(objs *Objects, got chan<- error) Source {
	return func(ctx context.Context, publish func(*Objects) error) error {
		got <- publish(objs)
		<-ctx.Done()
		return nil
	}
}

// runUntilDone runs p until the test ends, and fails the test if Run
// returns an error.
func runUntilDone(t *testing.T, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// recorder is a sink that records what it gets and refuses it with err.
type recorder struct {
	mu   sync.Mutex
	sets []*xdsapi.Resources
	err  error
}

func (r *recorder) sink(out *translate.Output) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets = append(r.sets, out.Resources)
	return r.err
}

func (r *recorder) got() []*xdsapi.Resources {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*xdsapi.Resources(nil), r.sets...)
}

// The sinks get each translated set in order; one that refuses it keeps
// it from the sinks after it, and its error goes back to the source.
func TestSinks(t *testing.T) {
	refused := errors.New("refused")
	for _, tc := range []struct {
		name      string
		firstErr  error
		wantLater int
	}{
		{"accepted", nil, 1},
		{"refused by the first", refused, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, later := &recorder{err: tc.firstErr}, &recorder{}
			got := make(chan error, 1)
			p := New(Options{
				Source: once(&Objects{Input: &translate.Input{ServiceEntries: []*v1alpha1.ServiceEntry{serviceEntry("se", "demo")}}}, got),
				Sinks:  []Sink{first.sink, later.sink},
			})
			runUntilDone(t, p.Run)
			if err := <-got; err != tc.firstErr {
				t.Fatalf("publish returned %v, want %v", err, tc.firstErr)
			}
			sets := first.got()
			if len(sets) != 1 || len(sets[0].Clusters) == 0 {
				t.Fatalf("first sink got %d sets (%v), want the translated ServiceEntry", len(sets), sets)
			}
			if l := later.got(); len(l) != tc.wantLater || (len(l) == 1 && l[0] != sets[0]) {
				t.Fatalf("later sink got %d sets, want %d (the same set)", len(l), tc.wantLater)
			}
		})
	}
}

// Every condition not True is logged once, with the object, where it was
// read when the source says, and the condition; the translation is
// recorded in the pipeline's series.
func TestConditionsAndMetrics(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	reg := prometheus.NewRegistry()
	got := make(chan error, 1)
	in := &translate.Input{
		ServiceEntries: []*v1alpha1.ServiceEntry{serviceEntry("se", "demo")},
		MetaRouters:    []*v1alpha1.MetaRouter{routerTo("known", "demo"), routerTo("lost", "nowhere"), routerTo("unsourced", "elsewhere")},
	}
	p := New(Options{
		Source:     once(&Objects{Input: in, Origins: map[string]string{"MetaRouter/default/lost": "mr.yaml:2"}}, got),
		Log:        zap.New(core),
		Registerer: reg,
	})
	runUntilDone(t, p.Run)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	entries := logs.FilterMessage("config object not fully applied").All()
	want := []map[string]any{
		{"object": "MetaRouter/default/lost", "source": "mr.yaml:2", "condition": "Accepted"},
		{"object": "MetaRouter/default/lost", "source": "mr.yaml:2", "condition": "ResolvedRefs"},
		{"object": "MetaRouter/default/unsourced", "condition": "Accepted"},
		{"object": "MetaRouter/default/unsourced", "condition": "ResolvedRefs"},
	}
	if len(entries) != len(want) {
		t.Fatalf("logged %d conditions, want both of each router of an unknown host: %v", len(entries), entries)
	}
	for i, want := range want {
		fields := entries[i].ContextMap()
		for k, v := range want {
			if fields[k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, fields[k], v, fields)
			}
		}
		if _, ok := fields["source"]; ok != (want["source"] != nil) {
			t.Errorf("line %d: source given %v, want %v (%v)", i, ok, want["source"] != nil, fields)
		}
		if fields["reason"] == "" || fields["message"] == "" {
			t.Errorf("line %d: no reason or message: %v", i, fields)
		}
	}
	if n := testutil.CollectAndCount(reg, "metamesh_controlplane_translation_duration_seconds"); n != 1 {
		t.Errorf("translation histogram: %d series", n)
	}
	if n := testutil.ToFloat64(p.metrics.objects.WithLabelValues("MetaRouter", "ResolvedRefs", "False")); n != 2 {
		t.Errorf("objects{MetaRouter,ResolvedRefs,False} = %v, want 2", n)
	}
}

// The folder source publishes the folder's objects with the file each
// came from.
func TestFolder(t *testing.T) {
	dir := t.TempDir()
	se := "apiVersion: metamesh.io/v1alpha1\nkind: ServiceEntry\nmetadata: {name: demo, namespace: default}\n" +
		"spec:\n  hosts: [demo]\n  ports: [{number: 20880, name: dubbo, protocol: dubbo}]\n" +
		"  endpoints: [{address: 127.0.0.1}]\n"
	if err := os.WriteFile(filepath.Join(dir, "se.yaml"), []byte(se), 0o644); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.WarnLevel)
	sink := &recorder{}
	p := New(Options{
		Source: Folder(dir, time.Millisecond, zap.NewNop()),
		// No codec is known: the ServiceEntry is refused, and its problem
		// logged.
		Translate: translate.Options{KnownCodec: func(string) bool { return false }},
		Sinks:     []Sink{sink.sink},
		Log:       zap.New(core),
	})
	runUntilDone(t, p.Run)
	entry := waitLogged(t, logs, "ServiceEntry/default/demo")
	if entry["source"] != "se.yaml" {
		t.Fatalf("logged %v, want the source se.yaml", entry)
	}
	if len(sink.got()) != 1 {
		t.Fatalf("sink got %d sets, want the folder's", len(sink.got()))
	}
}

// fakeRegistry is a registry reporting one provider of iface.
type fakeRegistry struct{ url, iface string }

func (f fakeRegistry) Name() string { return f.url }

func (f fakeRegistry) Run(ctx context.Context, sink registry.Sink) error {
	sink.Available(f.url, true)
	sink.ReplaceAll(f.url, map[string][]registry.Provider{f.iface: {{Address: "127.0.0.1", Port: 20880}}})
	<-ctx.Done()
	return nil
}

// With registries, the providers are merged into the source's set: a
// ServiceEntry made for an interface is logged with the registry as its
// source, and the registries' series are registered with the pipeline's.
func TestRegistries(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	reg := prometheus.NewRegistry()
	m := &registry.Mixer{Sources: []registry.Source{fakeRegistry{"fake://r1", "com.example.Greeter"}}, Debounce: time.Millisecond,
		Metrics: registry.NewMetrics()}
	got := make(chan error, 1)
	p := New(Options{
		Source:     once(&Objects{Input: &translate.Input{}, Origins: map[string]string{}}, got),
		Registries: m,
		// dubbo is unknown: every ServiceEntry made is refused, and logged.
		Translate:  translate.Options{KnownCodec: func(string) bool { return false }},
		Log:        zap.New(core),
		Registerer: reg,
	})
	runUntilDone(t, m.Run)
	runUntilDone(t, p.Run)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	entry := waitLogged(t, logs, translate.Key("ServiceEntry", registry.MadeNamespace, registry.MadeName("com.example.Greeter")))
	if entry["source"] != "registry fake://r1" {
		t.Fatalf("logged %v, want the source registry fake://r1", entry)
	}
	if n, err := testutil.GatherAndCount(reg, "metamesh_registry_up"); err != nil || n != 1 {
		t.Fatalf("metamesh_registry_up: %d series (%v), want the registry's", n, err)
	}
}

// waitLogged waits for a condition of object to be logged and returns
// the line's fields.
func waitLogged(t *testing.T, logs *observer.ObservedLogs, object string) map[string]any {
	t.Helper()
	for i := 0; ; i++ {
		for _, e := range logs.FilterMessage("config object not fully applied").All() {
			if fields := e.ContextMap(); fields["object"] == object {
				return fields
			}
		}
		if i == 1000 {
			t.Fatalf("no condition of %s logged: %v", object, logs.All())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
