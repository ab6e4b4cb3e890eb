package config

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/router"
)

// perFilter unpacks the typed_per_filter_config entry of a route or
// virtual host named key into into, and reports whether there was one.
// Entries of other names than keys are refused.
func perFilter(cfg map[string]*anypb.Any, path, key string, into proto.Message, keys ...string) (bool, error) {
	names := make([]string, 0, len(cfg))
	for k := range cfg {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !slices.Contains(keys, k) {
			quoted := make([]string, len(keys))
			for i, k := range keys {
				quoted[i] = strconv.Quote(k)
			}
			return false, fmt.Errorf("%s.typed_per_filter_config[%q]: only %s has meaning here", path, k, strings.Join(quoted, " or "))
		}
	}
	a, ok := cfg[key]
	if !ok {
		return false, nil
	}
	path = fmt.Sprintf("%s.typed_per_filter_config[%q]", path, key)
	if err := a.UnmarshalTo(into); err != nil {
		return false, fmt.Errorf("%s: want a %s: %w", path, into.ProtoReflect().Descriptor().FullName(), err)
	}
	return true, nil
}

// rateLimit reads a virtual host's LocalRateLimit. key names the virtual
// host (route configuration and virtual host names) for bucket reuse.
func (b *Builder) rateLimit(rl *xdsapi.LocalRateLimit, key, path string) (*router.RateLimit, error) {
	var def *router.Bucket
	if tb := rl.GetTokenBucket(); tb != nil {
		shape, err := tokenBucket(tb, path+".token_bucket")
		if err != nil {
			return nil, err
		}
		def = b.bucket(key+"\x00default", shape)
	}
	conds := make([]router.RateCondition, 0, len(rl.GetConditions()))
	seen := map[string]int{} // conditions by match, so equal ones get buckets of their own
	for i, c := range rl.GetConditions() {
		cpath := fmt.Sprintf("%s.conditions[%d]", path, i)
		shape, err := tokenBucket(c.GetTokenBucket(), cpath+".token_bucket")
		if err != nil {
			return nil, err
		}
		var rc router.RateCondition
		for j, am := range c.GetMatch() {
			m, err := attributeMatcher(am)
			if err != nil {
				return nil, fmt.Errorf("%s.match[%d]: %w", cpath, j, err)
			}
			rc.Match = append(rc.Match, m)
		}
		// A condition's bucket is known by what it matches (and, for a
		// match repeated, which of them it is), wherever it moves in the
		// list.
		match, err := proto.MarshalOptions{Deterministic: true}.Marshal(&xdsapi.RateLimitCondition{Match: c.GetMatch()})
		if err != nil {
			return nil, fmt.Errorf("%s.match: %w", cpath, err)
		}
		n := seen[string(match)]
		seen[string(match)] = n + 1
		rc.Bucket = b.bucket(fmt.Sprintf("%s\x00%d\x00%s", key, n, match), shape)
		conds = append(conds, rc)
	}
	return router.NewRateLimit(def, conds), nil
}

// bucket returns the bucket known by key in the snapshot in force if it
// has the same shape (so its tokens carry over), else a new full one.
func (b *Builder) bucket(key string, shape router.TokenBucket) *router.Bucket {
	bk := b.buckets[key]
	if bk == nil || bk.Shape() != shape {
		bk = router.NewBucket(shape)
	}
	b.nextBuckets[key] = bk
	b.curBuckets[key] = bk
	return bk
}

func tokenBucket(b *xdsapi.TokenBucket, path string) (router.TokenBucket, error) {
	tb := router.TokenBucket{MaxTokens: b.GetMaxTokens(), TokensPerFill: b.GetTokensPerFill(), FillInterval: b.GetFillInterval().AsDuration()}
	switch {
	case b == nil:
		return tb, fmt.Errorf("%s: required", path)
	case tb.MaxTokens == 0:
		return tb, fmt.Errorf("%s.max_tokens: must be at least 1", path)
	case tb.FillInterval <= 0:
		return tb, fmt.Errorf("%s.fill_interval: must be positive", path)
	}
	if tb.TokensPerFill == 0 {
		tb.TokensPerFill = 1
	}
	return tb, nil
}

func attributeMatcher(am *xdsapi.AttributeMatch) (router.Matcher, error) {
	if am.GetName() == "" {
		return router.Matcher{}, fmt.Errorf("name: required")
	}
	m := router.Matcher{Name: am.GetName(), Invert: am.GetInvert()}
	switch p := am.GetPattern().(type) {
	case *xdsapi.AttributeMatch_Exact:
		m.Kind, m.Value = router.MatchExact, p.Exact
	case *xdsapi.AttributeMatch_Prefix:
		m.Kind, m.Value = router.MatchPrefix, p.Prefix
	case *xdsapi.AttributeMatch_Suffix:
		m.Kind, m.Value = router.MatchSuffix, p.Suffix
	case *xdsapi.AttributeMatch_Contains:
		m.Kind, m.Value = router.MatchContains, p.Contains
	case *xdsapi.AttributeMatch_Regex:
		return router.NewRegexMatcher(am.GetName(), p.Regex, am.GetInvert())
	case *xdsapi.AttributeMatch_Present:
		m.Kind = router.MatchPresent
		m.Invert = am.GetInvert() != !p.Present
	default:
		m.Kind = router.MatchPresent
	}
	return m, nil
}

// fault reads a route's RouteFault.
func fault(f *xdsapi.RouteFault, path string) (*router.Fault, error) {
	out := &router.Fault{}
	if d := f.GetDelay(); d != nil {
		if d.GetPercentage() > 100 {
			return nil, fmt.Errorf("%s.delay.percentage: %d is over 100", path, d.GetPercentage())
		}
		if d.GetFixedDelay().AsDuration() <= 0 {
			return nil, fmt.Errorf("%s.delay.fixed_delay: must be positive", path)
		}
		out.Delay, out.DelayPercent = d.GetFixedDelay().AsDuration(), d.GetPercentage()
	}
	if a := f.GetAbort(); a != nil {
		if a.GetPercentage() > 100 {
			return nil, fmt.Errorf("%s.abort.percentage: %d is over 100", path, a.GetPercentage())
		}
		out.AbortStatus, out.AbortPercent = a.GetStatus(), a.GetPercentage()
	}
	return out, nil
}
