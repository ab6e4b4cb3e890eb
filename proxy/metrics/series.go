package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type seriesKey struct{ protocol, service, route, cluster string }

// Series caches the per-route handles of one (protocol, service, route,
// cluster), so a request's accounting costs one map lookup instead of a
// label hash per series.
type Series struct {
	m        *Proxy
	key      seriesKey
	ok, err  prometheus.Counter
	duration prometheus.Observer
}

// Series returns the cached handles for the labels.
func (m *Proxy) Series(protocol, service, route, cluster string) *Series {
	k := seriesKey{protocol, service, route, cluster}
	if s, ok := m.series.Load(k); ok {
		return s.(*Series)
	}
	s := &Series{
		m:        m,
		key:      k,
		ok:       m.Requests.WithLabelValues(protocol, service, route, cluster, "ok"),
		err:      m.Requests.WithLabelValues(protocol, service, route, cluster, "error"),
		duration: m.Duration.WithLabelValues(protocol, service, route, cluster),
	}
	actual, _ := m.series.LoadOrStore(k, s)
	return actual.(*Series)
}

// Done counts one finished request: status is "ok", "error" or a local
// reply reason.
func (s *Series) Done(status string, took time.Duration) {
	switch status {
	case "ok":
		s.ok.Inc()
	case "error":
		s.err.Inc()
	default:
		k := s.key
		s.m.Requests.WithLabelValues(k.protocol, k.service, k.route, k.cluster, status).Inc()
	}
	s.duration.Observe(took.Seconds())
}
