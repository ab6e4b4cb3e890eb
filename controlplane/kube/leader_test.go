package kube

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// statusWrites counts the status writes made through a config.
type statusWrites struct{ n atomic.Int64 }

func (s *statusWrites) wrap(cfg *rest.Config) *rest.Config {
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/status") {
				s.n.Add(1)
			}
			return rt.RoundTrip(r)
		})
	}
	return cfg
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestLeaderWritesStatus: of two replicas sharing a Lease, only the holder
// writes status, both publish; when the holder stops, the other takes over
// the writes.
func TestLeaderWritesStatus(t *testing.T) {
	cfg, c := apiServer(t)
	ctx := context.Background()
	ns := namespace(t, c, "leader")
	mr := dubboRouter(ns, "led", "led.example", "")
	if err := c.Create(ctx, mr); err != nil {
		t.Fatal(err)
	}
	opts := func(id string) Options {
		// A lease long enough that a loaded machine doesn't lose it; the
		// holder releases it when it stops, so the takeover is quick anyway.
		return Options{LeaderElection: true, LeaderElectionNamespace: ns, Identity: id,
			LeaseDuration: 10 * time.Second, RenewDeadline: 8 * time.Second, RetryPeriod: 200 * time.Millisecond}
	}
	var writesA, writesB statusWrites
	srcA := startSource(t, writesA.wrap(rest.CopyConfig(cfg)), opts("a"))
	wantCondition(t, c, mr, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonUnknownHost, "led.example")
	srcB := startSource(t, writesB.wrap(rest.CopyConfig(cfg)), opts("b"))

	var lease coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: DefaultLeaderElectionID}, &lease); err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h != "a" {
		t.Fatalf("Lease holder %v, want a", lease.Spec.HolderIdentity)
	}
	eventually(t, "b publishing", func() (bool, string) { return srcB.publishes.Load() > 0, "nothing published" })

	// A change while a leads: a writes it, b doesn't.
	mr.Spec.Hosts = []v1alpha1.Host{"led2.example"}
	if err := c.Update(ctx, mr); err != nil {
		t.Fatal(err)
	}
	wantCondition(t, c, mr, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonUnknownHost, "led2.example")
	if n := writesB.n.Load(); n != 0 {
		t.Errorf("b, not leading, wrote status %d times", n)
	}
	if writesA.n.Load() == 0 {
		t.Error("a, leading, wrote no status")
	}

	// a stops (releasing the Lease): b takes over.
	if err := srcA.stop(); err != nil {
		t.Errorf("a: Run: %v", err)
	}
	mr.Spec.Hosts = []v1alpha1.Host{"led3.example"}
	if err := c.Update(ctx, mr); err != nil {
		t.Fatal(err)
	}
	wantCondition(t, c, mr, v1alpha1.ConditionResolvedRefs, metav1.ConditionFalse, v1alpha1.ReasonUnknownHost, "led3.example")
	if writesB.n.Load() == 0 {
		t.Error("b, now leading, wrote no status")
	}
}
