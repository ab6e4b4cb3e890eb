package router

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/metamesh/metamesh/protocols"
)

// TokenBucket is a token bucket's shape: it holds up to MaxTokens (full at
// start) and gains TokensPerFill every FillInterval.
type TokenBucket struct {
	MaxTokens     uint32
	TokensPerFill uint32
	FillInterval  time.Duration
}

func (b TokenBucket) limiter() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(b.TokensPerFill)/b.FillInterval.Seconds()), int(b.MaxTokens))
}

// RateCondition gives the requests matching all of Match a bucket of
// their own.
type RateCondition struct {
	Match  []Matcher
	Bucket TokenBucket
}

// RateLimit is one virtual host's local rate limit. Tokens refill
// continuously at the bucket's average rate (golang.org/x/time/rate), so a
// bucket of 100 per second admits one request every 10ms once drained,
// not 100 at the top of each second.
type RateLimit struct {
	conditions []rateCondition
	all        *rate.Limiter // nil: requests matching no condition pass
}

type rateCondition struct {
	match   []Matcher
	limiter *rate.Limiter
}

// NewRateLimit builds the limiter of a virtual host: default (nil for
// none) for requests matching no condition.
func NewRateLimit(def *TokenBucket, conds []RateCondition) *RateLimit {
	r := &RateLimit{}
	if def != nil {
		r.all = def.limiter()
	}
	for _, c := range conds {
		r.conditions = append(r.conditions, rateCondition{match: c.Match, limiter: c.Bucket.limiter()})
	}
	return r
}

// Allow takes a token for a request with attributes h from the bucket of
// the first condition it matches, or the default bucket; it reports false
// when the bucket is empty.
func (r *RateLimit) Allow(h *protocols.Headers) bool {
	for i := range r.conditions {
		c := &r.conditions[i]
		if matchAll(c.match, h) {
			return c.limiter.Allow()
		}
	}
	return r.all == nil || r.all.Allow()
}

func matchAll(ms []Matcher, h *protocols.Headers) bool {
	for i := range ms {
		if !ms[i].Match(h) {
			return false
		}
	}
	return true
}
