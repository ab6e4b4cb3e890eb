package xds

import "github.com/prometheus/client_golang/prometheus"

// metrics are the ADS server's Prometheus series.
type metrics struct {
	updates prometheus.Counter
	pushes  prometheus.Counter
	// pushSeconds is how long building a snapshot and setting it for
	// every connected node took (sending is asynchronous, per stream).
	pushSeconds prometheus.Histogram
	rejected    prometheus.Counter
	responses   *prometheus.CounterVec
	acks        *prometheus.CounterVec
	nacks       *prometheus.CounterVec
	// inflight and admissionWait are the admission's (admission.go).
	inflight      prometheus.Gauge
	admissionWait prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, proxies func() float64) *metrics {
	m := &metrics{
		updates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metamesh_controlplane_config_updates_total",
			Help: "Resource sets handed to the ADS server (before debouncing).",
		}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metamesh_controlplane_xds_pushes_total",
			Help: "Snapshots published to the connected proxies (after debouncing; unchanged sets are not pushed).",
		}),
		pushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "metamesh_controlplane_xds_push_duration_seconds",
			Help:    "Time to build a snapshot and set it for every connected proxy.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metamesh_controlplane_xds_snapshot_errors_total",
			Help: "Resource sets not published because the snapshot could not be built or was inconsistent.",
		}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_controlplane_xds_responses_total",
			Help: "Discovery responses sent to proxies, by resource type and protocol (sotw or delta).",
		}, []string{"type", "protocol"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_controlplane_xds_acks_total",
			Help: "Responses proxies accepted, by resource type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_controlplane_xds_nacks_total",
			Help: "Responses proxies refused (NACK), by resource type; the reason is in the log and /debug/proxies.",
		}, []string{"type"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "metamesh_controlplane_xds_inflight_bytes",
			Help: "Bytes of discovery responses made for one proxy alone, sent and not yet answered (ACK or NACK) by it, bounded by --push-inflight-bytes (responses shared by every proxy are not counted).",
		}),
		admissionWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "metamesh_controlplane_xds_admission_wait_seconds",
			Help:    "Time a stream waited for its responses to be admitted under --push-inflight-bytes.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "metamesh_controlplane_xds_connected_proxies",
		Help: "Proxy nodes with at least one open ADS stream.",
	}, proxies)
	reg.MustRegister(m.updates, m.pushes, m.pushSeconds, m.rejected, m.responses, m.acks, m.nacks, m.inflight, m.admissionWait, connected)
	return m
}
