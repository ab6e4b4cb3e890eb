package cluster

import (
	"fmt"
	"testing"
)

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
	for _, hashed := range []bool{false, true} {
		t.Run(fmt.Sprintf("hashed=%v", hashed), func(t *testing.T) {
			c := testCluster(3, nil)
			last := c.Endpoints[0].Host
			c.LB = always{last}
			if hashed {
				c.LB = neighbours{[]*Host{last, c.Endpoints[1].Host, c.Endpoints[2].Host}}
			}
			for i := range 20 {
				if h := c.PickOther("key", hashed, last); h == last || h == nil {
					t.Fatalf("pick %d: %v, want a host other than the last try's", i, h)
				}
			}
			// The others unreachable: the last try's host is all there is.
			c.Endpoints[1].Host.reach.down.Store(true)
			c.Endpoints[2].Host.reach.down.Store(true)
			if h := c.PickOther("key", hashed, last); h != last {
				t.Fatalf("with the others unreachable: %v, want the last try's host", h)
			}
		})
	}
}
