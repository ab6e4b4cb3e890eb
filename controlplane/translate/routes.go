package translate

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// virtualHost is svc's on port p, with the router and policy in force;
// its domain is the service name.
func (t *translation) virtualHost(p *port, svc *service) *routev3.VirtualHost {
	vh := &routev3.VirtualHost{Name: fmt.Sprintf("%s:%d", svc.host, p.number), Domains: []string{svc.host}}
	if len(p.services) == 1 {
		// The port is this service's alone in the whole mesh, as a
		// Kubernetes Service's port is: requests are its whatever
		// service name they carry (a Dubbo interface need not equal the
		// host name). Not when a view sees only this one of several:
		// the others' requests must get no route there.
		vh.Domains = append(vh.Domains, "*")
	}
	if svc.router == nil || len(svc.router.Spec.Routes) == 0 {
		// A service with no MetaRouter, or one with no routes (only
		// a rate limit), goes to all of its endpoints.
		vh.Routes = []*routev3.Route{{
			Name:   "default",
			Match:  matchAll(),
			Action: &routev3.Route_Route{Route: t.action(p, []v1alpha1.WeightedDestination{{Destination: v1alpha1.Destination{Host: v1alpha1.Host(svc.host)}}}, "", "")},
		}}
	} else {
		for i, r := range svc.router.Spec.Routes {
			vh.Routes = append(vh.Routes, t.route(p, svc, r, fmt.Sprintf("spec.routes[%d]", i)))
		}
	}
	if svc.router != nil && svc.router.Spec.LocalRateLimit != nil {
		vh.TypedPerFilterConfig = perFilter(rateLimit(svc.router.Spec.LocalRateLimit))
	}
	if svc.router != nil && svc.router.Spec.GlobalRateLimit != nil {
		mapSet(&vh.TypedPerFilterConfig, xdsapi.GlobalRateLimitName, anyOf(t.globalRateLimit(svc.router)))
	}
	return vh
}

func matchAll() *routev3.RouteMatch {
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: ""}}
}

func (t *translation) route(p *port, svc *service, r v1alpha1.MetaRoute, path string) *routev3.Route {
	m := matchAll()
	if r.Match != nil {
		keys := make([]string, 0, len(r.Match.Attributes))
		for k := range r.Match.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m.Headers = append(m.Headers, headerMatcher(k, r.Match.Attributes[k]))
		}
	}
	a := t.action(p, r.Route, svc.routKey, path+".route")
	a.Timeout = duration(r.Timeout)
	if rs := r.Retries; rs != nil {
		// Empty retryOn is connect-failure only: the one failure where the
		// server surely never saw the request.
		on := []string{string(v1alpha1.RetryOnConnectFailure)}
		if len(rs.RetryOn) > 0 {
			on = on[:0]
			for _, o := range rs.RetryOn {
				on = append(on, string(o))
			}
		}
		a.RetryPolicy = &routev3.RetryPolicy{
			RetryOn:       strings.Join(on, ","),
			NumRetries:    wrapperspb.UInt32(uint32(rs.Attempts)),
			PerTryTimeout: duration(rs.PerTryTimeout),
		}
	}
	if r.Mirror != nil {
		// Resolved like a destination, so an unknown host or subset is
		// reported the same way.
		mirror := t.action(p, []v1alpha1.WeightedDestination{{Destination: *r.Mirror}}, svc.routKey, path+".mirror")
		pct := uint32(100)
		if r.MirrorPercentage != nil {
			pct = uint32(*r.MirrorPercentage)
		}
		a.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{{
			Cluster:         mirror.GetCluster(),
			RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{Numerator: pct}},
		}}
	}
	out := &routev3.Route{
		Name:   r.Name,
		Match:  m,
		Action: &routev3.Route_Route{Route: a},
	}
	if r.Fault != nil || r.MirrorExcludeReads {
		pol := &xdsapi.RoutePolicy{MirrorExcludesReadonly: r.MirrorExcludeReads}
		if r.Fault != nil {
			pol.Fault = fault(r.Fault)
		}
		out.TypedPerFilterConfig = perFilter(pol)
	}
	for _, kv := range r.RequestMutation {
		out.RequestHeadersToAdd = append(out.RequestHeadersToAdd, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: kv.Key, Value: kv.Value}})
	}
	for _, kv := range r.ResponseMutation {
		out.ResponseHeadersToAdd = append(out.ResponseHeadersToAdd, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: kv.Key, Value: kv.Value}})
	}
	return out
}

func headerMatcher(name string, sm v1alpha1.StringMatch) *routev3.HeaderMatcher {
	h := &routev3.HeaderMatcher{Name: name}
	var pattern *matcherv3.StringMatcher
	switch {
	case sm.Exact != nil:
		pattern = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: *sm.Exact}}
	case sm.Prefix != nil:
		pattern = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: *sm.Prefix}}
	case sm.Regex != nil:
		pattern = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: *sm.Regex}}}
	default:
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		return h
	}
	h.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: pattern}
	return h
}

// action resolves destinations to cluster names on port p. A destination
// whose host or subset is unknown still gets its cluster name, so the
// route keeps its place and the proxy answers "no healthy upstream" for
// it, and the MetaRouter reports the unresolved reference.
func (t *translation) action(p *port, dests []v1alpha1.WeightedDestination, key, path string) *routev3.RouteAction {
	a := &routev3.RouteAction{}
	var hashKey string
	clusters := make([]*routev3.WeightedCluster_ClusterWeight, 0, len(dests))
	for i, d := range dests {
		host, subset := string(d.Destination.Host), string(d.Destination.Subset)
		num := p.number
		if d.Destination.Port != nil {
			num = int32(*d.Destination.Port)
		}
		svc, ok := t.services[host]
		switch {
		case !ok:
			t.unresolved(key, v1alpha1.ReasonUnknownHost, fmt.Sprintf("%s[%d].destination.host: no ServiceEntry defines %s", path, i, host))
		case subset != "":
			if _, found := subsetLabels(svc, subset); !found {
				t.unresolved(key, v1alpha1.ReasonUnknownSubset, fmt.Sprintf("%s[%d].destination.subset: %s has no subset %q (define it in a DestinationPolicy)", path, i, host, subset))
			}
		}
		if ok && d.Destination.Port == nil && !hasPort(svc, num) && len(svc.ports) > 0 {
			num = int32(svc.ports[0].Number)
		}
		if ok && svc.policy != nil && svc.policy.Spec.LoadBalancer != nil && svc.policy.Spec.LoadBalancer.Policy == v1alpha1.ConsistentHash {
			hashKey = svc.policy.Spec.LoadBalancer.HashKey
		}
		w := uint32(100)
		if d.Weight != nil {
			w = uint32(*d.Weight)
		}
		clusters = append(clusters, &routev3.WeightedCluster_ClusterWeight{Name: ClusterName(num, subset, host), Weight: wrapperspb.UInt32(w)})
	}
	if len(clusters) == 1 {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: clusters[0].Name}
	} else {
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: clusters}}
	}
	if hashKey != "" {
		a.HashPolicy = []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: hashKey},
		}}}
	}
	return a
}

func hasPort(svc *service, num int32) bool {
	for _, p := range svc.ports {
		if int32(p.Number) == num {
			return true
		}
	}
	return false
}

// duration converts a validated Duration; nil or unparsable (which
// validation refuses) is nil.
func duration(d *v1alpha1.Duration) *durationpb.Duration {
	if d == nil {
		return nil
	}
	v, err := time.ParseDuration(string(*d))
	if err != nil {
		return nil
	}
	return durationpb.New(v)
}
