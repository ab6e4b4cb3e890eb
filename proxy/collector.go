package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// hostCollector reports each upstream host of the config in force at
// scrape time: its requests in flight and whether outlier detection has
// ejected it or a failed connection attempt made it unreachable. Reading the live counters when scraped costs the data path
// nothing.
type hostCollector struct{ srv *Server }

var (
	hostActiveDesc = prometheus.NewDesc("metamesh_upstream_rq_active",
		"Requests in flight to an upstream host, by cluster.", []string{"cluster", "upstream"}, nil)
	hostEjectedDesc = prometheus.NewDesc("metamesh_upstream_ejected",
		"1 while outlier detection keeps the host out of its cluster's load balancing.", []string{"cluster", "upstream"}, nil)
	hostUnreachableDesc = prometheus.NewDesc("metamesh_upstream_unreachable",
		"1 from a failed connection attempt to the host until a reconnect in the background succeeds; other hosts are picked meanwhile.", []string{"cluster", "upstream"}, nil)
)

func (hostCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hostActiveDesc
	ch <- hostEjectedDesc
	ch <- hostUnreachableDesc
}

func (c hostCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.srv.Snapshot()
	if snap == nil {
		return
	}
	now := time.Now()
	for _, cl := range snap.Clusters {
		for _, e := range cl.Endpoints {
			ch <- prometheus.MustNewConstMetric(hostActiveDesc, prometheus.GaugeValue, float64(e.Host.Active()), cl.Name, e.Host.Addr)
			ejected := boolGauge(!e.Host.EjectedUntil(now).IsZero())
			ch <- prometheus.MustNewConstMetric(hostEjectedDesc, prometheus.GaugeValue, ejected, cl.Name, e.Host.Addr)
			ch <- prometheus.MustNewConstMetric(hostUnreachableDesc, prometheus.GaugeValue, boolGauge(e.Host.Unreachable()), cl.Name, e.Host.Addr)
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
