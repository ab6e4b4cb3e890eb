package config

//lint:file-ignore SA1019 HeaderMatcher's deprecated *_match fields are still sent by control planes and are accepted on purpose.

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/router"
)

// buildRoutes compiles one RouteConfiguration, read with meta-protocol
// meaning: domains are service names, header matchers match attributes.
func (b *Builder) buildRoutes(rc *routev3.RouteConfiguration) (*router.Table, error) {
	path := "route_configuration " + rc.GetName()
	if err := onlyFields(rc, path, "name", "virtual_hosts"); err != nil {
		return nil, err
	}
	vhosts := make([]*router.VirtualHost, 0, len(rc.GetVirtualHosts()))
	names := make(map[string]int, len(rc.GetVirtualHosts()))
	for i, vh := range rc.GetVirtualHosts() {
		vpath := fmt.Sprintf("%s: virtual_hosts[%d]", path, i)
		if err := onlyFields(vh, vpath, "name", "domains", "routes", "typed_per_filter_config"); err != nil {
			return nil, err
		}
		// Names are unique: a virtual host's rate-limit buckets are known
		// by it from one config to the next.
		if j, dup := names[vh.GetName()]; dup {
			return nil, fmt.Errorf("%s.name: %q is also the name of virtual_hosts[%d]", vpath, vh.GetName(), j)
		}
		names[vh.GetName()] = i
		v := &router.VirtualHost{Name: vh.GetName(), Domains: vh.GetDomains()}
		var rl xdsapi.LocalRateLimit
		if ok, err := perFilter(vh.GetTypedPerFilterConfig(), vpath, xdsapi.FilterName, &rl, xdsapi.FilterName, xdsapi.GlobalRateLimitName); err != nil {
			return nil, err
		} else if ok {
			if v.RateLimit, err = b.rateLimit(&rl, rc.GetName()+"\x00"+vh.GetName(), vpath+".typed_per_filter_config"); err != nil {
				return nil, err
			}
		}
		var grl xdsapi.GlobalRateLimit
		if ok, err := perFilter(vh.GetTypedPerFilterConfig(), vpath, xdsapi.GlobalRateLimitName, &grl, xdsapi.FilterName, xdsapi.GlobalRateLimitName); err != nil {
			return nil, err
		} else if ok {
			if v.Global, err = b.globalRateLimit(&grl, fmt.Sprintf("%s.typed_per_filter_config[%q]", vpath, xdsapi.GlobalRateLimitName)); err != nil {
				return nil, err
			}
		}
		for j, r := range vh.GetRoutes() {
			route, err := buildRoute(r, fmt.Sprintf("%s.routes[%d]", vpath, j))
			if err != nil {
				return nil, err
			}
			v.Routes = append(v.Routes, route)
		}
		vhosts = append(vhosts, v)
	}
	t, err := router.NewTable(rc.GetName(), vhosts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func buildRoute(r *routev3.Route, path string) (*router.Route, error) {
	if err := onlyFields(r, path, "name", "match", "route", "request_headers_to_add", "response_headers_to_add", "typed_per_filter_config"); err != nil {
		return nil, err
	}
	out := &router.Route{Name: r.GetName()}
	var pol xdsapi.RoutePolicy
	if ok, err := perFilter(r.GetTypedPerFilterConfig(), path, xdsapi.FilterName, &pol, xdsapi.FilterName); err != nil {
		return nil, err
	} else if ok {
		if f := pol.GetFault(); f != nil {
			if out.Fault, err = fault(f, path+".typed_per_filter_config.fault"); err != nil {
				return nil, err
			}
		}
		out.MirrorExcludesReadonly = pol.GetMirrorExcludesReadonly()
	}
	m := r.GetMatch()
	if err := onlyFields(m, path+".match", "prefix", "headers"); err != nil {
		return nil, err
	}
	if p := m.GetPrefix(); p != "" && p != "/" {
		return nil, fmt.Errorf("%s.match.prefix: %q: only \"\" or \"/\" (match all) has meaning here", path, p)
	}
	for k, h := range m.GetHeaders() {
		hpath := fmt.Sprintf("%s.match.headers[%d]", path, k)
		if err := onlyFields(h, hpath, "name", "string_match", "present_match", "invert_match", "exact_match", "prefix_match", "suffix_match", "contains_match", "safe_regex_match"); err != nil {
			return nil, err
		}
		mt, err := buildMatcher(h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", hpath, err)
		}
		out.Matchers = append(out.Matchers, mt)
	}
	action := r.GetRoute()
	if action == nil {
		return nil, fmt.Errorf("%s.route: required (a meta-protocol route forwards to clusters)", path)
	}
	apath := path + ".route"
	if err := onlyFields(action, apath, "cluster", "weighted_clusters", "hash_policy", "timeout", "retry_policy", "request_mirror_policies"); err != nil {
		return nil, err
	}
	for k, mp := range action.GetRequestMirrorPolicies() {
		m, err := mirror(mp, fmt.Sprintf("%s.request_mirror_policies[%d]", apath, k))
		if err != nil {
			return nil, err
		}
		out.Mirrors = append(out.Mirrors, m)
	}
	if d := action.GetTimeout(); d != nil {
		out.Timeout = d.AsDuration()
	}
	if rp := action.GetRetryPolicy(); rp != nil {
		var err error
		if out.Retry, err = retryPolicy(rp, apath+".retry_policy"); err != nil {
			return nil, err
		}
	}
	if c := action.GetCluster(); c != "" {
		out.Clusters = []router.WeightedCluster{{Name: c, Weight: 1}}
	}
	// header_name picks by a request value, total_weight and
	// runtime_key_prefix change the split: none may be silently ignored.
	if wcs := action.GetWeightedClusters(); wcs != nil {
		if err := onlyFields(wcs, apath+".weighted_clusters", "clusters"); err != nil {
			return nil, err
		}
	}
	for k, wc := range action.GetWeightedClusters().GetClusters() {
		if err := onlyFields(wc, fmt.Sprintf("%s.weighted_clusters.clusters[%d]", apath, k), "name", "weight"); err != nil {
			return nil, err
		}
		out.Clusters = append(out.Clusters, router.WeightedCluster{Name: wc.GetName(), Weight: wc.GetWeight().GetValue()})
	}
	for k, hp := range action.GetHashPolicy() {
		if hp.GetHeader() == nil || k > 0 {
			return nil, fmt.Errorf("%s.hash_policy[%d]: only one header (attribute) policy is supported", apath, k)
		}
		out.HashKey = hp.GetHeader().GetHeaderName()
	}
	var err error
	if out.RequestSet, err = headerSets(r.GetRequestHeadersToAdd(), path+".request_headers_to_add"); err != nil {
		return nil, err
	}
	if out.ResponseSet, err = headerSets(r.GetResponseHeadersToAdd(), path+".response_headers_to_add"); err != nil {
		return nil, err
	}
	return out, nil
}

// mirror reads one request mirror policy: a cluster and the share of
// requests (runtime_fraction's default value; all when unset).
func mirror(mp *routev3.RouteAction_RequestMirrorPolicy, path string) (router.Mirror, error) {
	if err := onlyFields(mp, path, "cluster", "runtime_fraction"); err != nil {
		return router.Mirror{}, err
	}
	if mp.GetCluster() == "" {
		return router.Mirror{}, fmt.Errorf("%s.cluster: required", path)
	}
	m := router.Mirror{Cluster: mp.GetCluster(), PerMillion: 1_000_000}
	if rf := mp.GetRuntimeFraction(); rf != nil {
		if err := onlyFields(rf, path+".runtime_fraction", "default_value"); err != nil {
			return router.Mirror{}, err
		}
		m.PerMillion = perMillion(rf.GetDefaultValue())
	}
	return m, nil
}

// perMillion converts a FractionalPercent to millionths, capped at all.
func perMillion(f *typev3.FractionalPercent) uint32 {
	n := uint64(f.GetNumerator())
	switch f.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		n *= 10_000
	case typev3.FractionalPercent_TEN_THOUSAND:
		n *= 100
	}
	return uint32(min(n, 1_000_000))
}

// retryPolicy reads Envoy's RetryPolicy: retry_on (connect-failure, reset,
// unavailable; default all three), num_retries (default 1, as Envoy) and
// per_try_timeout.
func retryPolicy(rp *routev3.RetryPolicy, path string) (*router.RetryPolicy, error) {
	if err := onlyFields(rp, path, "retry_on", "num_retries", "per_try_timeout"); err != nil {
		return nil, err
	}
	out := &router.RetryPolicy{Retries: 1, On: router.RetryConnectFailure | router.RetryReset | router.RetryUnavailable}
	if s := rp.GetRetryOn(); s != "" {
		on, err := router.ParseRetryOn(s)
		if err != nil {
			return nil, fmt.Errorf("%s.retry_on: %w", path, err)
		}
		out.On = on
	}
	if n := rp.GetNumRetries(); n != nil {
		out.Retries = int(n.GetValue())
	}
	if d := rp.GetPerTryTimeout(); d != nil {
		out.PerTryTimeout = d.AsDuration()
	}
	return out, nil
}

func buildMatcher(h *routev3.HeaderMatcher) (router.Matcher, error) {
	name, inv := h.GetName(), h.GetInvertMatch()
	m := router.Matcher{Name: name, Invert: inv}
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		m.Kind = router.MatchPresent
		m.Invert = inv != !s.PresentMatch
	case *routev3.HeaderMatcher_ExactMatch:
		m.Kind, m.Value = router.MatchExact, s.ExactMatch
	case *routev3.HeaderMatcher_PrefixMatch:
		m.Kind, m.Value = router.MatchPrefix, s.PrefixMatch
	case *routev3.HeaderMatcher_SuffixMatch:
		m.Kind, m.Value = router.MatchSuffix, s.SuffixMatch
	case *routev3.HeaderMatcher_ContainsMatch:
		m.Kind, m.Value = router.MatchContains, s.ContainsMatch
	case *routev3.HeaderMatcher_SafeRegexMatch:
		return router.NewRegexMatcher(name, s.SafeRegexMatch.GetRegex(), inv)
	case *routev3.HeaderMatcher_StringMatch:
		return stringMatcher(name, s.StringMatch, inv)
	case nil:
		m.Kind = router.MatchPresent
	default:
		return m, fmt.Errorf("%T: not supported", s)
	}
	return m, nil
}

func stringMatcher(name string, sm *matcherv3.StringMatcher, inv bool) (router.Matcher, error) {
	if sm.GetIgnoreCase() {
		return router.Matcher{}, fmt.Errorf("string_match.ignore_case: not supported (attributes keep their case)")
	}
	m := router.Matcher{Name: name, Invert: inv}
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		m.Kind, m.Value = router.MatchExact, p.Exact
	case *matcherv3.StringMatcher_Prefix:
		m.Kind, m.Value = router.MatchPrefix, p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		m.Kind, m.Value = router.MatchSuffix, p.Suffix
	case *matcherv3.StringMatcher_Contains:
		m.Kind, m.Value = router.MatchContains, p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		return router.NewRegexMatcher(name, p.SafeRegex.GetRegex(), inv)
	default:
		return m, fmt.Errorf("string_match: %T: not supported", p)
	}
	return m, nil
}

func headerSets(opts []*corev3.HeaderValueOption, path string) ([]protocols.Header, error) {
	var out []protocols.Header
	for i, o := range opts {
		if err := onlyFields(o, fmt.Sprintf("%s[%d]", path, i), "header", "append_action"); err != nil {
			return nil, err
		}
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			// An attribute has one value: both mean "set it".
		default:
			return nil, fmt.Errorf("%s[%d].append_action: %s is not supported (attributes are set, replacing any value)", path, i, o.GetAppendAction())
		}
		h := o.GetHeader()
		if h.GetKey() == "" {
			return nil, fmt.Errorf("%s[%d].header.key: empty", path, i)
		}
		out = append(out, protocols.Header{Key: h.GetKey(), Value: h.GetValue()})
	}
	return out, nil
}
