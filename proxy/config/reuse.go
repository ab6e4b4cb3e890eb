package config

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/rls"
	"github.com/metamesh/metamesh/proxy/router"
)

// An xDS client keeps the decoded messages of every type a push did not
// change, so most of a push is the very messages of the snapshot in force:
// a route change leaves every cluster and endpoint message as it was, an
// endpoint change every route configuration. The Builder reuses what it
// made from a message it sees again (the same pointer, which resources
// never change once handed over: see xdsapi.Resources) instead of validating and
// building it again. A message equal in content but decoded anew (file
// mode reloads, a resent type) is built again: only identity is cheap
// enough to check.

// builtCluster is what a build made from a cluster and its assignment.
type builtCluster struct {
	src *clusterv3.Cluster
	cla *endpointv3.ClusterLoadAssignment
	out *cluster.Cluster
}

// builtRoutes is what a build made from a route configuration, with the
// rate-limit buckets it holds (by key, to carry them to the next build).
type builtRoutes struct {
	src     *routev3.RouteConfiguration
	out     *router.Table
	buckets map[string]*router.Bucket
	// services are the rate-limit service clients it uses, by cluster.
	services map[string]*rls.Client
}

// reusedCluster returns the cluster the snapshot in force made from the
// same messages, registering its hosts and load for this build, or nil.
func (b *Builder) reusedCluster(c *clusterv3.Cluster, cla *endpointv3.ClusterLoadAssignment) *cluster.Cluster {
	prev, ok := b.clusters[c.GetName()]
	if !ok || prev.src != c || prev.cla != cla {
		return nil
	}
	for _, ep := range prev.out.Endpoints {
		b.nextHosts[ep.Host.Addr] = ep.Host
	}
	b.nextLoads[c.GetName()] = prev.out.Load
	b.nextClusters[c.GetName()] = prev
	return prev.out
}

// reusedRoutes returns the route table the snapshot in force made from the
// same message, registering its rate-limit buckets for this build, or nil.
func (b *Builder) reusedRoutes(rc *routev3.RouteConfiguration) *router.Table {
	prev, ok := b.routes[rc.GetName()]
	if !ok || prev.src != rc {
		return nil
	}
	for k, bk := range prev.buckets {
		b.nextBuckets[k] = bk
	}
	for k, c := range prev.services {
		b.nextServices[k] = c
	}
	b.nextRoutes[rc.GetName()] = prev
	return prev.out
}

// known reports whether m is one of the messages the snapshot in force was
// built from, so it was validated then.
func (b *Builder) known(m any) bool {
	switch m := m.(type) {
	case *clusterv3.Cluster:
		return b.clusters[m.GetName()].src == m
	case *routev3.RouteConfiguration:
		return b.routes[m.GetName()].src == m
	case *endpointv3.ClusterLoadAssignment:
		_, ok := b.assignments[m]
		return ok
	}
	return false
}
