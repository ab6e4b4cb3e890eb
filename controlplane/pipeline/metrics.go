package pipeline

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metamesh/metamesh/controlplane/translate"
)

// metrics are the translation series, the same in `metamesh run` and
// `metamesh controlplane` (docs/observability.md).
type metrics struct {
	translate prometheus.Histogram
	objects   *prometheus.GaugeVec
}

// newMetrics makes the translation series and registers them on reg.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		translate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "metamesh_controlplane_translation_duration_seconds",
			Help:    "Time to translate the config objects to xDS resources.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "metamesh_controlplane_objects",
			Help: "Config objects in the last translation, by kind and by the status of each condition.",
		}, []string{"kind", "condition", "status"}),
	}
	reg.MustRegister(m.translate, m.objects)
	return m
}

// observe records one translation.
func (m *metrics) observe(out *translate.Output, took time.Duration) {
	m.translate.Observe(took.Seconds())
	m.objects.Reset()
	for key, conds := range out.Status {
		kind, _, _ := strings.Cut(key, "/")
		for _, c := range conds {
			m.objects.WithLabelValues(kind, c.Type, string(c.Status)).Inc()
		}
	}
}
