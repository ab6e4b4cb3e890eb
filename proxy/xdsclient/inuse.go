package xdsclient

import (
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// keepInUse adds to res the clusters of prev (the set in force) that res's
// routes still send to but res no longer has, with their endpoints, and
// returns their names.
//
// A push that moves a route from one cluster to another and removes the
// old one reaches the proxy as one response per type, clusters first and
// routes last (ADS order). Applied alone, the cluster response would leave
// the routes in force pointing at a cluster that is gone until the route
// response arrives: calls in between fail with "cluster does not exist",
// and for good if the control plane dies in between. Kept, the old cluster
// serves (with its pools, reused by the builder) until routes no longer
// name it; the next route update drops it.
func keepInUse(res, prev *xdsapi.Resources) []string {
	if prev == nil {
		return nil
	}
	have := make(map[string]bool, len(res.Clusters))
	for _, c := range res.Clusters {
		have[c.GetName()] = true
	}
	haveCLA := make(map[string]bool, len(res.Endpoints))
	for _, e := range res.Endpoints {
		haveCLA[e.GetClusterName()] = true
	}
	var kept []string
	for _, name := range routedClusters(res.Routes) {
		if have[name] {
			continue
		}
		i := slices.IndexFunc(prev.Clusters, func(c *clusterv3.Cluster) bool { return c.GetName() == name })
		if i < 0 {
			continue
		}
		c := prev.Clusters[i]
		res.Clusters = append(res.Clusters, c)
		have[name] = true
		kept = append(kept, name)
		cla := c.GetEdsClusterConfig().GetServiceName()
		if cla == "" {
			cla = name
		}
		if haveCLA[cla] {
			continue
		}
		if j := slices.IndexFunc(prev.Endpoints, func(e *endpointv3.ClusterLoadAssignment) bool { return e.GetClusterName() == cla }); j >= 0 {
			res.Endpoints = append(res.Endpoints, prev.Endpoints[j])
			haveCLA[cla] = true
		}
	}
	return kept
}

// routedClusters are the clusters that routes send requests (or mirror
// copies) to, in order of first use.
func routedClusters(rcs []*routev3.RouteConfiguration) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, rc := range rcs {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				a := r.GetRoute()
				add(a.GetCluster())
				for _, wc := range a.GetWeightedClusters().GetClusters() {
					add(wc.GetName())
				}
				for _, m := range a.GetRequestMirrorPolicies() {
					add(m.GetCluster())
				}
			}
		}
	}
	return names
}
