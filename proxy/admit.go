package proxy

import (
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// admit applies r's route's fault injection, picks the cluster of its
// weighted destinations, and takes a slot of that cluster's request
// limit (two-way requests; the slot is r's until its outcome).
func (r *request) admit() *local {
	rt := r.rt
	if f := rt.Fault; f != nil {
		var abort bool
		if r.delay, abort = f.Sample(); abort {
			return &local{reason: protocols.ReasonNoHealthyUpstream, abort: f.AbortStatus,
				text: fmt.Sprintf("metamesh: route %s: fault injected (abort, status %d)", rt.Name, f.AbortStatus)}
		}
	}
	r.cname = rt.PickCluster()
	if r.cl = r.snap.Clusters[r.cname]; r.cl == nil {
		return fail(protocols.ReasonNoHealthyUpstream, "metamesh: route %s: cluster %s does not exist", rt.Name, r.cname)
	}
	if !r.oneway() && !r.cl.Load.Begin(r.cl.Limits) {
		return fail(protocols.ReasonOverloaded, "metamesh: route %s: cluster %s has %d requests in flight, its limit",
			rt.Name, r.cname, r.cl.Limits.MaxRequests)
	}
	return nil
}
