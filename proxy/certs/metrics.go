package certs

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports when the current certificate expires, as
// metamesh_workload_cert_expiry_timestamp_seconds (no series before the
// first certificate): an alert can fire when rotation stopped.
func (s *Store) Collector() prometheus.Collector { return expiry{s} }

type expiry struct{ s *Store }

var expiryDesc = prometheus.NewDesc("metamesh_workload_cert_expiry_timestamp_seconds",
	"When the proxy's workload certificate expires (Unix time); it is re-issued at about half its lifetime.", nil, nil)

func (e expiry) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (e expiry) Collect(ch chan<- prometheus.Metric) {
	if id := e.s.Current(); id != nil {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(id.NotAfter().Unix()))
	}
}
