package lb

import (
	"math/rand/v2"
	"sort"
	"strconv"

	"github.com/cespare/xxhash/v2"

	"github.com/metamesh/metamesh/proxy/cluster"
)

// minRingSize is the least number of points on the ring, Envoy's default.
const minRingSize = 1024

// ring is a consistent-hash ring: each host owns points in proportion to
// its weight; a key goes to the first point at or after its hash. Adding
// or removing one host moves only the keys of its own points.
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
	type point struct {
		hash uint64
		host *cluster.Host
	}
	pts := make([]point, 0, perWeight*total)
	all := make([]*cluster.Host, len(eps))
	for i, e := range eps {
		all[i] = e.Host
		key := []byte(e.Host.Addr + "_")
		for j := range uint64(e.Weight) * perWeight {
			k := strconv.AppendUint(key, j, 10)
			pts = append(pts, point{xxhash.Sum64(k), e.Host})
		}
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].hash < pts[j].hash })
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
	h := xxhash.Sum64String(key)
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i] >= h })
	if i == len(r.points) {
		i = 0
	}
	return r.hosts[i]
}
