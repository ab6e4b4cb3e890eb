package cluster

import (
	"math/rand/v2"
	"time"
)

// Fallback is implemented by pickers whose Pick returns the same host for
// the same key (consistent hashing), where picking again can't find
// another: Fallback returns the n-th host after key's own (n ≥ 1), so a
// key whose host is out moves to one neighbour, not anywhere.
type Fallback interface {
	Fallback(key string, n int) *Host
}

// Pick picks a host for one request: the load balancer's choice, unless
// that host is unreachable (its last connection attempt failed) or
// ejected by outlier detection, in which case the balancer is asked
// again and then every host is scanned for one that is neither. If there
// is none it prefers a reachable host (ejected: better to try one than to
// fail every request), then the balancer's first choice.
func (c *Cluster) Pick(key string, hasKey bool) *Host {
	h := c.LB.Pick(key, hasKey)
	if h == nil || (!h.Unreachable() && c.Outlier == nil) {
		return h
	}
	now := time.Now()
	if c.usable(h, now) {
		return h
	}
	first := h
	fb, hashed := c.LB.(Fallback)
	hashed = hashed && hasKey
	n := len(c.Endpoints)
	for i := 1; i < n; i++ {
		if hashed {
			h = fb.Fallback(key, i)
		} else if i <= 2 {
			h = c.LB.Pick(key, hasKey)
		} else {
			break
		}
		if c.usable(h, now) {
			return h
		}
	}
	if !hashed {
		// Random choices can miss the one good host: scan, from a
		// random place so the scan doesn't pile onto one host.
		start := rand.IntN(n)
		for i := range n {
			if e := c.Endpoints[(start+i)%n].Host; c.usable(e, now) {
				return e
			}
		}
	}
	if first.Unreachable() {
		for _, e := range c.Endpoints {
			if !e.Host.Unreachable() {
				return e.Host
			}
		}
	}
	return first
}

// usable reports whether h is reachable and not ejected at now.
func (c *Cluster) usable(h *Host, now time.Time) bool {
	return !h.Unreachable() && (c.Outlier == nil || h.EjectedUntil(now).IsZero())
}

// PickOther picks a host for a retry of a request whose last try went to
// not: as Pick, asked again while it returns not, and then (the balancer
// may keep choosing not: a least-request balancer favours the host whose
// requests just failed) the hosts scanned for a usable one other than
// not. It returns not only when the cluster has no other usable host. A
// hashed key stays on its host while that host is usable (Pick): the key
// may be a shard's, which no other host holds.
func (c *Cluster) PickOther(key string, hasKey bool, not *Host) *Host {
	h := c.Pick(key, hasKey)
	if _, hashed := c.LB.(Fallback); hashed && hasKey {
		return h
	}
	for range 2 {
		if h != not || h == nil {
			return h
		}
		h = c.Pick(key, hasKey)
	}
	if h != not {
		return h
	}
	n := len(c.Endpoints)
	now, start := time.Now(), rand.IntN(max(n, 1))
	for i := range n {
		if o := c.Endpoints[(start+i)%n].Host; o != not && c.usable(o, now) {
			return o
		}
	}
	return h
}
