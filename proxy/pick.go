package proxy

import "github.com/metamesh/metamesh/protocols"

// pick chooses r's upstream host in its cluster, by the route's hash
// attribute when it has one (unreachable and ejected hosts are skipped:
// cluster.Pick).
func (r *request) pick() *local {
	if t := r.d.topology(r.cl); t != nil {
		return r.pickRedis(t)
	}
	if r.rt.HashKey != "" {
		r.key, r.hasKey = r.m.Headers.Get(r.rt.HashKey)
	}
	if r.host = r.cl.Pick(r.key, r.hasKey); r.host == nil {
		if !r.oneway() {
			r.cl.Load.End()
		}
		return fail(protocols.ReasonNoHealthyUpstream, "metamesh: route %s: no healthy upstream in cluster %s", r.rt.Name, r.cname)
	}
	return nil
}
