package lb

import (
	"sync/atomic"

	"github.com/metamesh/metamesh/proxy/cluster"
)

// maxSchedule bounds the precomputed weighted schedule.
const maxSchedule = 4096

// roundRobin walks a precomputed smooth weighted schedule with an atomic
// cursor: host A weight 2 and B weight 1 yield A B A, not A A B.
type roundRobin struct {
	schedule []*cluster.Host
	next     atomic.Uint64
}

func newRoundRobin(eps []cluster.Endpoint) *roundRobin {
	weights := scaledWeights(eps, maxSchedule)
	var total int64
	for _, w := range weights {
		total += w
	}
	current := make([]int64, len(eps))
	schedule := make([]*cluster.Host, 0, total)
	for range total {
		best := 0
		for i, w := range weights {
			current[i] += w
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		schedule = append(schedule, eps[best].Host)
	}
	return &roundRobin{schedule: schedule}
}

func (r *roundRobin) Pick(string, bool) *cluster.Host {
	n := r.next.Add(1) - 1
	return r.schedule[n%uint64(len(r.schedule))]
}

// scaledWeights divides weights by their GCD and scales them down so they
// sum to at most limit, keeping every weight at least 1.
func scaledWeights(eps []cluster.Endpoint, limit int64) []int64 {
	g := int64(0)
	for _, e := range eps {
		g = gcd(g, int64(e.Weight))
	}
	out := make([]int64, len(eps))
	var sum int64
	for i, e := range eps {
		out[i] = int64(e.Weight) / g
		sum += out[i]
	}
	if sum > limit {
		for i := range out {
			out[i] = max(1, out[i]*limit/sum)
		}
	}
	return out
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
