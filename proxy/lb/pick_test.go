package lb

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/metamesh/metamesh/proxy/cluster"
)

// markDown makes h unreachable with a reconnect that keeps failing until
// the test ends.
func markDown(t *testing.T, h *cluster.Host) {
	h.ConnectFailed(func() (bool, error) { return false, errors.New("still down") })
	t.Cleanup(h.Retire)
}

// Every policy skips a host whose connection attempt failed, with or
// without outlier detection, as long as another host is reachable.
func TestPickSkipsUnreachable(t *testing.T) {
	for _, policy := range []string{RoundRobin, LeastRequest, Random, RingHash} {
		for _, outlier := range []*cluster.Outlier{nil, {ConsecutiveErrors: 5, MaxEjectionPercent: 10}} {
			t.Run(fmt.Sprintf("%s/outlier=%v", policy, outlier != nil), func(t *testing.T) {
				eps := []cluster.Endpoint{{Host: cluster.NewHost("a:1")}, {Host: cluster.NewHost("b:1")}, {Host: cluster.NewHost("c:1")}}
				picker, err := New(policy, eps)
				if err != nil {
					t.Fatal(err)
				}
				cl := &cluster.Cluster{Name: "c", Endpoints: eps, LB: picker, Outlier: outlier}
				dead := eps[1].Host
				markDown(t, dead)
				fallback := map[string]*cluster.Host{}
				for i := range 3000 {
					key := fmt.Sprintf("user-%d", i%300)
					h := cl.Pick(key, policy == RingHash)
					if h == dead {
						t.Fatalf("pick %d (key %s) chose the unreachable host", i, key)
					}
					if policy != RingHash {
						continue
					}
					if prev, ok := fallback[key]; ok && prev != h {
						t.Fatalf("key %s moved from %s to %s between picks", key, prev.Addr, h.Addr)
					}
					fallback[key] = h
				}
			})
		}
	}
}

// With every host unreachable, Pick still returns one: better to try
// than to fail every request without trying.
func TestPickAllUnreachable(t *testing.T) {
	eps := []cluster.Endpoint{{Host: cluster.NewHost("a:1")}, {Host: cluster.NewHost("b:1")}}
	picker, _ := New(RoundRobin, eps)
	cl := &cluster.Cluster{Name: "c", Endpoints: eps, LB: picker}
	for _, e := range eps {
		markDown(t, e.Host)
	}
	if h := cl.Pick("", false); h == nil {
		t.Fatal("no host picked while every host is unreachable")
	}
}

// A successful reconnect makes the host pickable again.
func TestReconnectRestoresHost(t *testing.T) {
	h := cluster.NewHost("a:1")
	dials := make(chan struct{}, 8)
	h.ConnectFailed(func() (bool, error) { dials <- struct{}{}; return false, nil })
	if !h.Unreachable() {
		t.Fatal("not unreachable after a failed connection attempt")
	}
	<-dials
	for range 1000 {
		if !h.Unreachable() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("still unreachable a second after a reconnect that succeeded")
}
