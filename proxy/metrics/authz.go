package metrics

import "github.com/prometheus/client_golang/prometheus"

// Authz holds the series of authorization policies (docs/authorization.md),
// by policy ("namespace/name"; for a request no ALLOW policy matched, the
// names of the service's ALLOW policies joined by commas).
type Authz struct {
	// Denied counts requests refused by a policy.
	Denied *prometheus.CounterVec
	// DryRunDenied counts requests a dry-run policy would have refused.
	DryRunDenied *prometheus.CounterVec
	// Audited counts requests an AUDIT policy matched.
	Audited *prometheus.CounterVec
}

func newAuthz() *Authz {
	return &Authz{
		Denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_requests_denied_total",
			Help: "Requests refused by an authorization policy, by policy.",
		}, []string{"policy"}),
		DryRunDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_authz_dry_run_denied_total",
			Help: "Requests a dry-run authorization policy would have refused (they were served), by policy.",
		}, []string{"policy"}),
		Audited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_requests_audited_total",
			Help: "Requests an AUDIT authorization policy matched, by policy.",
		}, []string{"policy"}),
	}
}

func (a *Authz) collectors() []prometheus.Collector {
	return []prometheus.Collector{a.Denied, a.DryRunDenied, a.Audited}
}
