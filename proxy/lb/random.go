package lb

import (
	"math/rand/v2"
	"sort"

	"github.com/metamesh/metamesh/proxy/cluster"
)

// random picks by weight with a binary search over cumulative weights.
type random struct {
	hosts []*cluster.Host
	cum   []uint64
}

func newRandom(eps []cluster.Endpoint) *random {
	r := &random{hosts: make([]*cluster.Host, len(eps)), cum: make([]uint64, len(eps))}
	var sum uint64
	for i, e := range eps {
		sum += uint64(e.Weight)
		r.hosts[i], r.cum[i] = e.Host, sum
	}
	return r
}

func (r *random) Pick(string, bool) *cluster.Host {
	n := rand.Uint64N(r.cum[len(r.cum)-1])
	i := sort.Search(len(r.cum), func(i int) bool { return r.cum[i] > n })
	return r.hosts[i]
}

// leastRequest is Envoy's power of two choices: of two random hosts, take
// the one with fewer requests in flight relative to its weight.
type leastRequest struct {
	eps []cluster.Endpoint
}

func newLeastRequest(eps []cluster.Endpoint) *leastRequest { return &leastRequest{eps: eps} }

func (l *leastRequest) Pick(string, bool) *cluster.Host {
	if len(l.eps) == 1 {
		return l.eps[0].Host
	}
	a := &l.eps[rand.IntN(len(l.eps))]
	b := &l.eps[rand.IntN(len(l.eps))]
	// Compare active/weight without division: a.active*b.w vs b.active*a.w.
	if (a.Host.Active()+1)*int64(b.Weight) <= (b.Host.Active()+1)*int64(a.Weight) {
		return a.Host
	}
	return b.Host
}
