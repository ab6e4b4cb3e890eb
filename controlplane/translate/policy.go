package translate

import (
	"sort"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// perFilter wraps m as the meta-protocol filter's typed_per_filter_config.
func perFilter(m proto.Message) map[string]*anypb.Any {
	return map[string]*anypb.Any{xdsapi.FilterName: anyOf(m)}
}

func anyOf(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err) // our own registered types always marshal
	}
	return a
}

// rateLimit translates a MetaRouter's localRateLimit.
func rateLimit(rl *v1alpha1.LocalRateLimit) *xdsapi.LocalRateLimit {
	out := &xdsapi.LocalRateLimit{}
	if rl.TokenBucket != nil {
		out.TokenBucket = tokenBucket(rl.TokenBucket)
	}
	for _, c := range rl.Conditions {
		out.Conditions = append(out.Conditions, &xdsapi.RateLimitCondition{
			Match:       attributeMatches(c.Match.Attributes),
			TokenBucket: tokenBucket(&c.TokenBucket),
		})
	}
	return out
}

func tokenBucket(b *v1alpha1.TokenBucket) *xdsapi.TokenBucket {
	out := &xdsapi.TokenBucket{MaxTokens: uint32(b.MaxTokens), TokensPerFill: 1, FillInterval: duration(&b.FillInterval)}
	if b.TokensPerFill != nil {
		out.TokensPerFill = uint32(*b.TokensPerFill)
	}
	return out
}

// attributeMatches lists attrs in key order.
func attributeMatches(attrs map[string]v1alpha1.StringMatch) []*xdsapi.AttributeMatch {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*xdsapi.AttributeMatch, 0, len(keys))
	for _, k := range keys {
		sm, am := attrs[k], &xdsapi.AttributeMatch{Name: k}
		switch {
		case sm.Exact != nil:
			am.Pattern = &xdsapi.AttributeMatch_Exact{Exact: *sm.Exact}
		case sm.Prefix != nil:
			am.Pattern = &xdsapi.AttributeMatch_Prefix{Prefix: *sm.Prefix}
		case sm.Regex != nil:
			am.Pattern = &xdsapi.AttributeMatch_Regex{Regex: *sm.Regex}
		default:
			am.Pattern = &xdsapi.AttributeMatch_Present{Present: true}
		}
		out = append(out, am)
	}
	return out
}

// fault translates a route's fault; percentages default to 100.
func fault(f *v1alpha1.Fault) *xdsapi.RouteFault {
	pct := func(p *int32) uint32 {
		if p == nil {
			return 100
		}
		return uint32(*p)
	}
	out := &xdsapi.RouteFault{}
	if d := f.Delay; d != nil {
		out.Delay = &xdsapi.FaultDelay{FixedDelay: duration(&d.FixedDelay), Percentage: pct(d.Percentage)}
	}
	if a := f.Abort; a != nil {
		out.Abort = &xdsapi.FaultAbort{Percentage: pct(a.Percentage)}
		if a.Status != nil {
			out.Abort.Status = uint32(*a.Status)
		}
	}
	return out
}
