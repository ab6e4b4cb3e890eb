package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/controlplane/registry"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// fakeRegistry is a registry.Source the test drives through its Sink: the
// status logic is what is under test here, not a registry client (the
// interop tests stop real ZooKeeper and etcd servers under the sources).
type fakeRegistry struct {
	name  string
	sinks chan registry.Sink
}

func (f fakeRegistry) Name() string { return f.name }

func (f fakeRegistry) Run(ctx context.Context, sink registry.Sink) error {
	f.sinks <- sink
	<-ctx.Done()
	return nil
}

// wantNoCondition waits until obj's status, for its current generation,
// has no condition typ.
func wantNoCondition(t *testing.T, c client.Client, obj client.Object, typ string) {
	t.Helper()
	key := client.ObjectKeyFromObject(obj)
	eventually(t, fmt.Sprintf("%s %s without %s", kindOf(obj), key, typ), func() (bool, string) {
		if err := c.Get(context.Background(), key, obj); err != nil {
			return false, err.Error()
		}
		st := statusOf(obj)
		if st.ObservedGeneration != obj.GetGeneration() {
			return false, fmt.Sprintf("observed generation %d, object is at %d", st.ObservedGeneration, obj.GetGeneration())
		}
		if got := meta.FindStatusCondition(st.Conditions, typ); got != nil {
			return false, fmt.Sprintf("%s=%s %s: %s", typ, got.Status, got.Reason, got.Message)
		}
		return true, ""
	})
}

// TestRegistryUnreachableStatus: a ServiceEntry that takes its endpoints
// from a registry (controlplane's --registry: a Mixer fed by Run) reports
// RegistryReachable=True naming the registry; while the registry is
// unreachable, False with reason RegistryUnreachable, the registry's URL
// and since when, its other conditions unchanged; True again when it is
// back; and no such condition once the ServiceEntry has endpoints of its
// own. A ServiceEntry the registry does not feed never gets one.
func TestRegistryUnreachableStatus(t *testing.T) {
	cfg, c := apiServer(t)
	ctx := context.Background()
	ns := namespace(t, c, "registry")
	const url = "zookeeper://zk.example:2181"
	se := func(name, host string, eps ...v1alpha1.Endpoint) *v1alpha1.ServiceEntry {
		return &v1alpha1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ServiceEntrySpec{
			Hosts: []v1alpha1.Host{v1alpha1.Host(host)}, Ports: []v1alpha1.ServicePort{{Number: 20950, Name: "dubbo", Protocol: "dubbo"}}, Endpoints: eps}}
	}
	fed := se("greeter", "org.example.Greeter")
	own := se("own", "org.example.Own", v1alpha1.Endpoint{Address: "192.0.2.1"})
	for _, o := range []client.Object{fed, own} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	src := fakeRegistry{name: url, sinks: make(chan registry.Sink, 1)}
	went := time.Date(2026, 12, 4, 17, 0, 0, 0, time.UTC)
	m := &registry.Mixer{Sources: []registry.Source{src}, Debounce: 10 * time.Millisecond,
		Publish: func(*translate.Input) error { return nil }, Now: func() time.Time { return went }}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- m.Run(runCtx) }()
	go func() {
		done <- Run(runCtx, cfg, Options{Debounce: 20 * time.Millisecond, Logger: testLogger(), Registries: m},
			func(in *translate.Input) { _ = m.SetBase(in) })
	}()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
	sink := <-src.sinks
	provider := registry.Provider{Address: "198.18.0.1", Port: 20880, Params: map[string]string{"version": "1.0.0"}}
	sink.ReplaceAll(url, map[string][]registry.Provider{"org.example.Greeter": {provider}, "org.example.Own": {provider}})
	sink.Available(url, true)

	typ := v1alpha1.ConditionRegistryReachable
	wantCondition(t, c, fed, typ, metav1.ConditionTrue, v1alpha1.ReasonRegistryReachable, "endpoints are the providers registered in "+url)
	wantCondition(t, c, own, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantNoCondition(t, c, own, typ)

	sink.Available(url, false)
	wantCondition(t, c, fed, typ, metav1.ConditionFalse, v1alpha1.ReasonRegistryUnreachable,
		"endpoints are the last known from "+url+" since 2026-12-04T17:00:00Z")
	wantCondition(t, c, fed, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantNoCondition(t, c, own, typ)

	sink.Available(url, true)
	wantCondition(t, c, fed, typ, metav1.ConditionTrue, v1alpha1.ReasonRegistryReachable, url)

	// Endpoints of its own: the registry no longer feeds it.
	if err := c.Get(ctx, client.ObjectKeyFromObject(fed), fed); err != nil {
		t.Fatal(err)
	}
	fed.Spec.Endpoints = []v1alpha1.Endpoint{{Address: "192.0.2.2"}}
	if err := c.Update(ctx, fed); err != nil {
		t.Fatal(err)
	}
	wantNoCondition(t, c, fed, typ)
	wantCondition(t, c, fed, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
}
