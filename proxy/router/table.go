package router

import (
	"math/rand/v2"
	"time"

	"github.com/metamesh/metamesh/protocols"
)

// ServiceKey is the attribute that selects a virtual host.
const ServiceKey = "service"

// WeightedCluster is one destination of a route.
type WeightedCluster struct {
	Name   string
	Weight uint32
}

// Route is one ordered entry of a virtual host: all Matchers must match
// (AND); an empty list matches every request.
type Route struct {
	Name     string
	Matchers []Matcher
	Clusters []WeightedCluster
	// HashKey names the attribute a consistent-hash cluster hashes on.
	HashKey string
	// RequestSet and ResponseSet are attributes the codec sets on the
	// forwarded request and on the response.
	RequestSet  []protocols.Header
	ResponseSet []protocols.Header
	// Timeout bounds a request end to end, retries included (0: none).
	Timeout time.Duration
	// Retry retries failed tries (nil: never).
	Retry *RetryPolicy
	// Mirrors copy requests to other clusters; with
	// MirrorExcludesReadonly, not the requests whose readonly attribute
	// is "true".
	Mirrors                []Mirror
	MirrorExcludesReadonly bool
	// Fault injects delays and aborts (nil: none).
	Fault *Fault

	total uint32
}

// HasPolicies reports whether requests on r need the proxy to follow them
// past their first try (timeouts, retries).
func (r *Route) HasPolicies() bool { return r.Timeout > 0 || r.Retry != nil }

// Matches reports whether every matcher of r matches h.
func (r *Route) Matches(h *protocols.Headers) bool { return matchAll(r.Matchers, h) }

// PickCluster chooses a destination cluster by weight.
func (r *Route) PickCluster() string {
	if len(r.Clusters) == 1 {
		return r.Clusters[0].Name
	}
	n := rand.Uint32N(r.total)
	for _, c := range r.Clusters {
		if n < c.Weight {
			return c.Name
		}
		n -= c.Weight
	}
	return r.Clusters[len(r.Clusters)-1].Name
}

// VirtualHost holds the routes of the services named by Domains.
type VirtualHost struct {
	Name    string
	Domains []string
	// Service is the service the host serves: its first domain other
	// than "*" (set by NewTable; "" when it has none). Authorization
	// policies protect it, whatever service name a request it serves
	// through the wildcard carries.
	Service string
	Routes  []*Route
	// RateLimit limits the host's requests on this proxy (nil: none).
	RateLimit *RateLimit
	// Global asks a rate-limit service about the host's requests (nil:
	// none).
	Global *GlobalRateLimit
}

// Match returns the first route that matches h, or nil.
func (v *VirtualHost) Match(h *protocols.Headers) *Route {
	for _, r := range v.Routes {
		if r.Matches(h) {
			return r
		}
	}
	return nil
}

// Table is one compiled route configuration.
type Table struct {
	Name     string
	hosts    map[string]*VirtualHost
	wildcard *VirtualHost
	// asks: a virtual host has a global rate limit (AsksRateLimitService).
	asks bool
}

// Lookup returns the virtual host for service: an exact domain first, then
// the "*" host, or nil.
func (t *Table) Lookup(service string) *VirtualHost {
	if v, ok := t.hosts[service]; ok {
		return v
	}
	return t.wildcard
}

// Wildcard returns the host of the "*" domain, or nil.
func (t *Table) Wildcard() *VirtualHost { return t.wildcard }

// VirtualHosts returns the hosts of t (for config dumps).
func (t *Table) VirtualHosts() map[string]*VirtualHost { return t.hosts }

// Has reports whether service is one of t's exact domains. Metrics label
// requests with their service only then, so clients can't mint series.
func (t *Table) Has(service string) bool {
	_, ok := t.hosts[service]
	return ok
}

// AsksRateLimitService reports whether requests routed by t may wait on a
// rate-limit service: one of its virtual hosts has a global rate limit.
// False for a nil Table.
func (t *Table) AsksRateLimitService() bool { return t != nil && t.asks }
