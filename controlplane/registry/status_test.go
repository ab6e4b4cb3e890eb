package registry

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// waitConditions waits for RegistryChanged until the conditions satisfy
// ok.
func waitConditions(t *testing.T, m *Mixer, what string, ok func(map[string]metav1.Condition) bool) map[string]metav1.Condition {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if c := m.RegistryConditions(); ok(c) {
			return c
		}
		select {
		case <-m.RegistryChanged():
		case <-deadline:
			t.Fatalf("timed out waiting for %s: conditions %+v", what, m.RegistryConditions())
		}
	}
}

// TestMixerRegistryConditions: each ServiceEntry of the base that takes
// registry endpoints has a RegistryReachable condition for its generation:
// True naming its registries, False with the registry and since when while
// one of them is away, True again when it is back. Made ServiceEntries and
// ServiceEntries with endpoints of their own have none.
func TestMixerRegistryConditions(t *testing.T) {
	sinkc := make(chan Sink, 1)
	src := funcSource{name: zk1, run: func(_ context.Context, sink Sink) { sinkc <- sink }}
	went := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)
	m := &Mixer{Sources: []Source{src}, Debounce: time.Millisecond, Publish: func(*translate.Input) error { return nil }, Now: func() time.Time { return went }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	filled := entry("filled", []string{"com.x.F"}, 20880)
	filled.Generation = 3
	own := entry("own", []string{"com.x.Own"}, 20880, v1alpha1.Endpoint{Address: "192.0.2.1"})
	other := entry("other", []string{"com.x.O"}, 20880)
	_ = m.SetBase(&translate.Input{ServiceEntries: []*v1alpha1.ServiceEntry{filled, own, other}})
	sink := <-sinkc
	sink.ReplaceAll(zk1, map[string][]Provider{
		"com.x.I":   {prov("", "10.0.0.1", 1, "")},
		"com.x.F":   {prov("", "10.0.0.2", 1, "")},
		"com.x.Own": {prov("", "10.0.0.5", 1, "")},
	})
	sink.ReplaceAll(zk2, map[string][]Provider{
		"com.x.F": {prov("", "10.0.0.3", 1, "")},
		"com.x.O": {prov("", "10.0.0.4", 1, "")},
	})
	sink.Available(zk1, true)
	sink.Available(zk2, true)

	fKey, oKey := translate.Key("ServiceEntry", "default", "filled"), translate.Key("ServiceEntry", "default", "other")
	up := waitConditions(t, m, "both fed ServiceEntries reported", func(c map[string]metav1.Condition) bool { return len(c) == 2 })
	want := metav1.Condition{Type: v1alpha1.ConditionRegistryReachable, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonRegistryReachable,
		ObservedGeneration: 3, Message: "endpoints are the providers registered in " + zk1 + ", " + zk2}
	if up[fKey] != want {
		t.Errorf("filled: %+v, want %+v", up[fKey], want)
	}
	if c := up[oKey]; c.Status != metav1.ConditionTrue || c.Message != "endpoints are the providers registered in "+zk2 {
		t.Errorf("other: %+v", c)
	}

	sink.Available(zk1, false)
	down := waitConditions(t, m, "filled's registry unreachable", func(c map[string]metav1.Condition) bool {
		return c[fKey].Status == metav1.ConditionFalse
	})
	want.Status, want.Reason = metav1.ConditionFalse, v1alpha1.ReasonRegistryUnreachable
	want.Message = "endpoints are the last known from " + zk1 + " since 2026-12-04T16:00:00Z"
	if down[fKey] != want {
		t.Errorf("filled with %s away: %+v, want %+v", zk1, down[fKey], want)
	}
	if c := down[oKey]; c.Status != metav1.ConditionTrue {
		t.Errorf("other, fed only by %s which is up: %+v", zk2, c)
	}

	sink.Available(zk1, true)
	waitConditions(t, m, "filled's registry back", func(c map[string]metav1.Condition) bool {
		return c[fKey].Status == metav1.ConditionTrue && c[fKey].Reason == v1alpha1.ReasonRegistryReachable
	})

	// A new generation of filled with endpoints of its own takes none.
	own2 := entry("filled", []string{"com.x.F"}, 20880, v1alpha1.Endpoint{Address: "192.0.2.2"})
	own2.Generation = 4
	_ = m.SetBase(&translate.Input{ServiceEntries: []*v1alpha1.ServiceEntry{own2, other}})
	waitConditions(t, m, "filled no longer fed", func(c map[string]metav1.Condition) bool {
		_, ok := c[fKey]
		return !ok && len(c) == 1
	})
}
