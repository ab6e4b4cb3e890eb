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

// Bucket is a token bucket in use. A config update that leaves a bucket
// as it was keeps using the same Bucket, tokens and all (see
// config.Builder), so an unrelated change doesn't refill it.
type Bucket struct {
	shape   TokenBucket
	limiter *rate.Limiter
}

// NewBucket returns a full bucket of the given shape.
func NewBucket(shape TokenBucket) *Bucket {
	return &Bucket{shape: shape, limiter: rate.NewLimiter(rate.Limit(float64(shape.TokensPerFill)/shape.FillInterval.Seconds()), int(shape.MaxTokens))}
}

// Shape is the shape the bucket was made with.
func (b *Bucket) Shape() TokenBucket { return b.shape }

// RateCondition gives the requests matching all of Match a bucket of
// their own.
type RateCondition struct {
	Match  []Matcher
	Bucket *Bucket
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
func NewRateLimit(def *Bucket, conds []RateCondition) *RateLimit {
	r := &RateLimit{}
	if def != nil {
		r.all = def.limiter
	}
	for _, c := range conds {
		r.conditions = append(r.conditions, rateCondition{match: c.Match, limiter: c.Bucket.limiter})
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
