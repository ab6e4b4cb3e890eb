package cluster

import "testing"

// always is a balancer that keeps choosing one host, as a least-request
// balancer does for a host whose requests all just failed.
type always struct{ h *Host }

func (a always) Pick(string, bool) *Host { return a.h }

// neighbours is a consistent-hashing balancer: key's own host is the
// first endpoint, Fallback n the n-th after it.
type neighbours struct{ hosts []*Host }

func (r neighbours) Pick(string, bool) *Host { return r.hosts[0] }
func (r neighbours) Fallback(_ string, n int) *Host {
	return r.hosts[n%len(r.hosts)]
}

func TestPickOtherLeavesTheLastTriesHost(t *testing.T) {
	c := testCluster(3, nil)
	last := c.Endpoints[0].Host
	c.LB = always{last}
	for i := range 20 {
		if h := c.PickOther("", false, last); h == last || h == nil {
			t.Fatalf("pick %d: %v, want a host other than the last try's", i, h)
		}
	}
	// The others unreachable: the last try's host is all there is.
	c.Endpoints[1].Host.reach.down.Store(true)
	c.Endpoints[2].Host.reach.down.Store(true)
	if h := c.PickOther("", false, last); h != last {
		t.Fatalf("with the others unreachable: %v, want the last try's host", h)
	}
}

// TestPickOtherKeepsAHashedKeysHost: a retry of a hashed key goes to the
// key's host while it is usable (its data may be there only), and to the
// key's neighbour once it is unreachable.
func TestPickOtherKeepsAHashedKeysHost(t *testing.T) {
	c := testCluster(3, nil)
	own := c.Endpoints[0].Host
	c.LB = neighbours{[]*Host{own, c.Endpoints[1].Host, c.Endpoints[2].Host}}
	if h := c.PickOther("key", true, own); h != own {
		t.Fatalf("retry of a hashed key: %v, want its own host", h)
	}
	own.reach.down.Store(true)
	if h := c.PickOther("key", true, own); h != c.Endpoints[1].Host {
		t.Fatalf("retry of a hashed key whose host is unreachable: %v, want its neighbour", h)
	}
}
