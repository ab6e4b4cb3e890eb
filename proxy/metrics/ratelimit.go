package metrics

import "github.com/prometheus/client_golang/prometheus"

// RateLimit holds the series of rate limits (docs/rate-limiting.md).
type RateLimit struct {
	// Limited counts requests refused by a rate limit, by protocol and
	// kind: local (the proxy's token buckets) or global (a rate-limit
	// service's OVER_LIMIT, or its failure under deny_on_fail).
	Limited *prometheus.CounterVec
	// ServiceErrors counts calls to a rate-limit service that failed or
	// timed out, by the service's cluster.
	ServiceErrors *prometheus.CounterVec
}

func newRateLimit() *RateLimit {
	return &RateLimit{
		Limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_rate_limited_total",
			Help: "Requests refused by a rate limit, by protocol and kind: local (token buckets) or global (a rate-limit service).",
		}, []string{"protocol", "kind"}),
		ServiceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_rate_limit_service_errors_total",
			Help: "Calls to a rate-limit service that failed or timed out, by its cluster.",
		}, []string{"cluster"}),
	}
}

func (r *RateLimit) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.Limited, r.ServiceErrors}
}
