package router

import (
	"context"
	"fmt"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"

	"github.com/metamesh/metamesh/protocols"
)

// DefaultRateLimitTimeout is how long a request waits for the rate-limit
// service when its config sets no request_timeout (Envoy's default).
const DefaultRateLimitTimeout = 20 * time.Millisecond

// RateLimitService is a rate-limit service's client (proxy/rls.Client).
type RateLimitService interface {
	ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error)
	// Cluster names the service's cluster, for errors and metrics.
	Cluster() string
}

// DescriptorEntry is one entry of the descriptor sent for a request: Key,
// valued by the request's attribute Property.
type DescriptorEntry struct {
	Key, Property string
}

// GlobalRateLimit is one virtual host's global rate limit: the requests
// matching all of Match ask Service, with one descriptor built from
// their attributes, whether they are over the limit of Domain.
type GlobalRateLimit struct {
	Domain      string
	Match       []Matcher
	Descriptors []DescriptorEntry
	// Timeout bounds each call (DefaultRateLimitTimeout when 0).
	Timeout time.Duration
	// DenyOnFail refuses the requests whose call fails; otherwise they
	// pass.
	DenyOnFail bool
	Service    RateLimitService
}

// Applies reports whether a request with attributes h asks the service:
// it matches and carries every descriptor's attribute. It allocates
// nothing.
func (g *GlobalRateLimit) Applies(h *protocols.Headers) bool {
	if !matchAll(g.Match, h) {
		return false
	}
	for i := range g.Descriptors {
		if _, ok := h.Get(g.Descriptors[i].Property); !ok {
			return false
		}
	}
	return true
}

// Check asks the service about a request with attributes h (one that
// Applies): limited is true when the service answers OVER_LIMIT. err is
// the call's failure (the caller decides with DenyOnFail).
func (g *GlobalRateLimit) Check(ctx context.Context, h *protocols.Headers) (limited bool, err error) {
	d := &ratelimitv3.RateLimitDescriptor{Entries: make([]*ratelimitv3.RateLimitDescriptor_Entry, len(g.Descriptors))}
	for i, e := range g.Descriptors {
		v, _ := h.Get(e.Property)
		d.Entries[i] = &ratelimitv3.RateLimitDescriptor_Entry{Key: e.Key, Value: v}
	}
	timeout := g.Timeout
	if timeout <= 0 {
		timeout = DefaultRateLimitTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := g.Service.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: g.Domain, Descriptors: []*ratelimitv3.RateLimitDescriptor{d}, HitsAddend: 1})
	if err != nil {
		return false, fmt.Errorf("rate-limit service %s: %w", g.Service.Cluster(), err)
	}
	switch resp.GetOverallCode() {
	case rlsv3.RateLimitResponse_OK:
		return false, nil
	case rlsv3.RateLimitResponse_OVER_LIMIT:
		return true, nil
	}
	return false, fmt.Errorf("rate-limit service %s: answered %s", g.Service.Cluster(), resp.GetOverallCode())
}
