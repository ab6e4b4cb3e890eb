package registry

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the registry series.
type Metrics struct {
	// Up is 1 while a registry is reachable and watched, 0 while its last
	// known providers are kept without being watched.
	Up *prometheus.GaugeVec
	// Providers is how many providers each registry lists, as last seen.
	Providers *prometheus.GaugeVec
	// Pushes counts configs published because the registries changed.
	Pushes prometheus.Counter
}

// NewMetrics makes the series; register them with Collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "metamesh_registry_up",
			Help: "1 while the registry is reachable and watched; 0 while its last known providers stay in force unwatched.",
		}, []string{"registry"}),
		Providers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "metamesh_registry_providers",
			Help: "Dubbo providers the registry lists, as last seen.",
		}, []string{"registry"}),
		Pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metamesh_registry_pushes_total",
			Help: "Configs published because the registries' providers changed (debounced).",
		}),
	}
}

// Collectors are the series to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Up, m.Providers, m.Pushes}
}
