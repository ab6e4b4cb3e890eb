// Package metrics defines the proxy's Prometheus series (docs/observability.md
// lists them all; docs/reference.md, Metrics).
// Labels are bounded: protocol, service, route, cluster, status and reason
// come from config or fixed sets, never from request IDs or raw keys.
package metrics

import (
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Proxy holds the data-plane series.
type Proxy struct {
	Registry      *prometheus.Registry
	Requests      *prometheus.CounterVec
	Duration      *prometheus.HistogramVec
	Active        *prometheus.GaugeVec
	UpstreamCx    *prometheus.GaugeVec
	DownstreamCx  *prometheus.GaugeVec
	DownstreamCxT *prometheus.CounterVec
	// DownstreamCxOverflow counts client connections a listener closed
	// at once because it had its maximum open.
	DownstreamCxOverflow *prometheus.CounterVec
	// DownstreamCxClosed counts client connections the proxy closed on a
	// bound: idle_timeout, frame_timeout or buffer_limit.
	DownstreamCxClosed *prometheus.CounterVec
	DecodeErrors       *prometheus.CounterVec
	LocalReplies       *prometheus.CounterVec
	UnknownReplies     *prometheus.CounterVec
	XDSUpdates         *prometheus.CounterVec
	Retries            *prometheus.CounterVec
	LateReplies        *prometheus.CounterVec
	Mirrors            *prometheus.CounterVec
	Ejections          *prometheus.CounterVec
	// Unreachable counts hosts found unreachable (a connection attempt
	// failed) and left out of load balancing until a reconnect succeeds.
	Unreachable *prometheus.CounterVec
	// AccessLogDropped counts access log lines dropped because the writer
	// was behind.
	AccessLogDropped prometheus.Counter
	// Capture holds the series of captured connections (mesh mode).
	Capture *Capture
	// Authz holds the series of authorization policies.
	Authz *Authz
	// RedisCluster holds the series of Redis Cluster upstreams.
	RedisCluster *RedisCluster
	// RateLimit holds the series of rate limits.
	RateLimit *RateLimit
	// MTLSHandshakes counts mutual TLS handshakes between proxies, by side
	// (server, client) and result (docs/mesh-mode.md).
	MTLSHandshakes *prometheus.CounterVec
	// RetireAfter is how long series of hosts and clusters that left the
	// config outlive them (see Retire); DefaultRetireAfter unless changed
	// before the proxy starts.
	RetireAfter time.Duration

	series  sync.Map // seriesKey → *Series
	names   []string
	retired retirement
}

// NewProxy registers the series, with Go runtime and process collectors,
// on a new registry.
func NewProxy() *Proxy {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Proxy{Registry: r, RetireAfter: DefaultRetireAfter, retired: retirement{
		open: map[string]int{}, hosts: map[string]time.Time{}, clusters: map[string]time.Time{}, policies: map[string]time.Time{}}}
	m.Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_requests_total",
		Help: "Requests handled, by outcome: ok, error (an upstream error reply) or the local reply reason.",
	}, []string{"protocol", "service", "route", "cluster", "status"})
	m.Duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "metamesh_request_duration_seconds",
		Help:    "Time from a request's arrival to its response being queued to the client.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	}, []string{"protocol", "service", "route", "cluster"})
	m.Active = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "metamesh_requests_active",
		Help: "Requests in flight to upstreams.",
	}, []string{"protocol"})
	m.UpstreamCx = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "metamesh_upstream_cx_active",
		Help: "Open upstream connections, by upstream address.",
	}, []string{"upstream"})
	m.DownstreamCx = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "metamesh_downstream_cx_active",
		Help: "Open client connections, by listener.",
	}, []string{"listener"})
	m.DownstreamCxT = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_downstream_cx_total",
		Help: "Client connections accepted, by listener.",
	}, []string{"listener"})
	m.DownstreamCxOverflow = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_downstream_cx_overflow_total",
		Help: "Client connections closed on accept because the listener had its maximum open.",
	}, []string{"listener"})
	m.DownstreamCxClosed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_downstream_cx_closed_total",
		Help: "Client connections the proxy closed on a bound, by reason: idle_timeout, frame_timeout, buffer_limit.",
	}, []string{"listener", "reason"})
	m.DecodeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_decode_errors_total",
		Help: "Frames that could not be decoded; each closed its connection.",
	}, []string{"protocol", "side"})
	m.LocalReplies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_local_replies_total",
		Help: "Requests the proxy answered itself, by reason.",
	}, []string{"protocol", "reason"})
	m.UnknownReplies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_upstream_unmatched_responses_total",
		Help: "Upstream responses that matched no request in flight (late or unknown IDs), dropped.",
	}, []string{"upstream"})
	m.XDSUpdates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_xds_updates_total",
		Help: "Config updates received, by resource type and result (ack or nack).",
	}, []string{"type", "result"})
	m.Retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_retries_total",
		Help: "Tries sent again after a retryable failure (route retry policy).",
	}, []string{"protocol", "service", "route", "cluster"})
	m.LateReplies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_upstream_late_responses_total",
		Help: "Outcomes of tries the request no longer waited for (timed out or retried elsewhere), dropped.",
	}, []string{"protocol"})
	m.Mirrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_mirror_requests_total",
		Help: "Request copies for route mirrors, by result: sent, failed (not sent), no_cluster, no_host.",
	}, []string{"protocol", "service", "route", "cluster", "result"})
	m.Ejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_outlier_ejections_total",
		Help: "Hosts ejected by outlier detection, by cluster.",
	}, []string{"cluster"})
	m.Unreachable = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_upstream_unreachable_total",
		Help: "Hosts left out of load balancing because a connection attempt failed, until a reconnect in the background succeeds; by cluster.",
	}, []string{"cluster"})
	m.MTLSHandshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "metamesh_mtls_handshakes_total",
		Help: "Mutual TLS handshakes between proxies, by side (server: accepted, client: dialed) and result (ok, bad_peer, no_identity, plaintext_refused, error).",
	}, []string{"side", "result"})
	m.AccessLogDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "metamesh_access_log_dropped_total",
		Help: "Access log lines dropped because the log writer was behind.",
	})
	for _, c := range []prometheus.Collector{m.MTLSHandshakes, m.Ejections, m.Unreachable, m.AccessLogDropped, m.Requests, m.Duration, m.Active, m.UpstreamCx, m.DownstreamCx, m.DownstreamCxT,
		m.DownstreamCxOverflow, m.DownstreamCxClosed,
		m.DecodeErrors, m.LocalReplies, m.UnknownReplies, m.XDSUpdates, m.Retries, m.LateReplies, m.Mirrors} {
		f(c)
		m.names = append(m.names, names(c)...)
	}
	m.Capture = newCapture()
	m.Authz = newAuthz()
	m.RedisCluster = newRedisCluster()
	m.RateLimit = newRateLimit()
	for _, c := range append(append(append(m.Capture.collectors(), m.Authz.collectors()...), m.RedisCluster.collectors()...), m.RateLimit.collectors()...) {
		f(c)
		m.names = append(m.names, names(c)...)
	}
	return m
}

// Register adds a collector of the proxy's own (one that reads live state
// at scrape time) to the registry and to Names.
func (m *Proxy) Register(c prometheus.Collector) {
	m.Registry.MustRegister(c)
	m.names = append(m.names, names(c)...)
}

// Names lists the metamesh series the proxy exports (for dashboards and
// alerts to be checked against).
func (m *Proxy) Names() []string { return m.names }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// names returns the metric names c describes.
func names(c prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc, 8)
	go func() { c.Describe(ch); close(ch) }()
	var out []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}
