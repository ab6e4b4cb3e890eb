package translate

import (
	"sort"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/proxy/api"
	"github.com/metamesh/metamesh/proxy/snapshot"
)

// perFilter wraps m as the meta-protocol filter's typed_per_filter_config.
func perFilter(m proto.Message) map[string]*anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err) // our own registered types always marshal
	}
	return map[string]*anypb.Any{snapshot.FilterName: a}
}

// rateLimit translates a MetaRouter's localRateLimit.
func rateLimit(rl *v1alpha1.LocalRateLimit) *api.LocalRateLimit {
	out := &api.LocalRateLimit{}
	if rl.TokenBucket != nil {
		out.TokenBucket = tokenBucket(rl.TokenBucket)
	}
	for _, c := range rl.Conditions {
		out.Conditions = append(out.Conditions, &api.RateLimitCondition{
			Match:       attributeMatches(c.Match.Attributes),
			TokenBucket: tokenBucket(&c.TokenBucket),
		})
	}
	return out
}

func tokenBucket(b *v1alpha1.TokenBucket) *api.TokenBucket {
	out := &api.TokenBucket{MaxTokens: uint32(b.MaxTokens), TokensPerFill: 1, FillInterval: duration(&b.FillInterval)}
	if b.TokensPerFill != nil {
		out.TokensPerFill = uint32(*b.TokensPerFill)
	}
	return out
}

// attributeMatches lists attrs in key order.
func attributeMatches(attrs map[string]v1alpha1.StringMatch) []*api.AttributeMatch {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*api.AttributeMatch, 0, len(keys))
	for _, k := range keys {
		sm, am := attrs[k], &api.AttributeMatch{Name: k}
		switch {
		case sm.Exact != nil:
			am.Pattern = &api.AttributeMatch_Exact{Exact: *sm.Exact}
		case sm.Prefix != nil:
			am.Pattern = &api.AttributeMatch_Prefix{Prefix: *sm.Prefix}
		case sm.Regex != nil:
			am.Pattern = &api.AttributeMatch_Regex{Regex: *sm.Regex}
		default:
			am.Pattern = &api.AttributeMatch_Present{Present: true}
		}
		out = append(out, am)
	}
	return out
}

// fault translates a route's fault; percentages default to 100.
func fault(f *v1alpha1.Fault) *api.RouteFault {
	pct := func(p *int32) uint32 {
		if p == nil {
			return 100
		}
		return uint32(*p)
	}
	out := &api.RouteFault{}
	if d := f.Delay; d != nil {
		out.Delay = &api.FaultDelay{FixedDelay: duration(&d.FixedDelay), Percentage: pct(d.Percentage)}
	}
	if a := f.Abort; a != nil {
		out.Abort = &api.FaultAbort{Percentage: pct(a.Percentage)}
		if a.Status != nil {
			out.Abort.Status = uint32(*a.Status)
		}
	}
	return out
}
