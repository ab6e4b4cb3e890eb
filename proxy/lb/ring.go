package lb

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/metamesh/metamesh/proxy/cluster"
)

// minRingSize is the least number of points on the ring, Envoy's default.
const minRingSize = 1024

// maxRingSize bounds the points (Envoy bounds them too, by max_ring_size)
// so that a huge endpoint weight in a config cannot exhaust memory. Every
// snapshot rebuilds its rings, so the bound is kept to 4 MiB of points.
const maxRingSize = 1 << 18

// ring is a consistent-hash ring: each host owns points in proportion to
// its weight; a key goes to the first point at or after its hash. A
// host's points depend only on its address, so removing one host moves its
// own keys plus the few that the other hosts' extra points take when the
// ring is rescaled to keep minRingSize points (as in Envoy).
type ring struct {
	points []uint64
	hosts  []*cluster.Host
	all    []*cluster.Host
}

func newRing(eps []cluster.Endpoint) *ring {
	var total uint64
	for _, e := range eps {
		total += uint64(e.Weight)
	}
	perWeight := (minRingSize + total - 1) / total
	count := func(w uint64) uint64 { return w * perWeight }
	if total*perWeight > maxRingSize {
		// Only when total > maxRingSize, so perWeight is 1: scale down.
		count = func(w uint64) uint64 { return max(1, w*maxRingSize/total) }
	}
	type point struct {
		hash uint64
		host *cluster.Host
	}
	pts := make([]point, 0, min(perWeight*total, maxRingSize+uint64(len(eps))))
	all := make([]*cluster.Host, len(eps))
	for i, e := range eps {
		all[i] = e.Host
		key := []byte(e.Host.Addr + "_")
		for j := range count(uint64(e.Weight)) {
			k := strconv.AppendUint(key, j, 10)
			pts = append(pts, point{xxhash.Sum64(k), e.Host})
		}
	}
	slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.hash, b.hash) })
	r := &ring{points: make([]uint64, len(pts)), hosts: make([]*cluster.Host, len(pts)), all: all}
	for i, p := range pts {
		r.points[i], r.hosts[i] = p.hash, p.host
	}
	return r
}

func (r *ring) Pick(key string, hasKey bool) *cluster.Host {
	if !hasKey {
		return r.all[rand.IntN(len(r.all))]
	}
	return r.hosts[r.point(key)]
}

// point returns the index of key's point on the ring.
func (r *ring) point(key string) int {
	h := xxhash.Sum64String(key)
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i] >= h })
	if i == len(r.points) {
		i = 0
	}
	return i
}

// Fallback returns the n-th distinct host after key's own along the ring
// (cluster.Fallback), or key's own host when the ring has fewer.
func (r *ring) Fallback(key string, n int) *cluster.Host {
	i := r.point(key)
	seen := []*cluster.Host{r.hosts[i]}
	for step := 1; step < len(r.points) && len(seen) <= n; step++ {
		h := r.hosts[(i+step)%len(r.points)]
		if !slices.Contains(seen, h) {
			seen = append(seen, h)
		}
	}
	return seen[min(n, len(seen)-1)]
}

var _ cluster.Fallback = (*ring)(nil)
