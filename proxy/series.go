package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/upstream"
)

// readyGauge is metamesh_ready: 1 once a config is in force (/ready
// answers 200), else 0, so an alert can tell a proxy that never got a
// config from one whose series are missing.
func (s *Server) readyGauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "metamesh_ready",
		Help: "1 once a config has been applied (/ready answers 200), else 0.",
	}, func() float64 { return boolGauge(s.Ready()) })
}

// loopHandoffs is metamesh_event_loop_handoffs_total: how many times the
// epoll I/O mode's watchdog took an event loop from a handler that waited
// (proxy/wire's Loop; 0 in goroutine mode).
func (s *Server) loopHandoffs() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "metamesh_event_loop_handoffs_total",
		Help: "Times the epoll I/O mode's watchdog handed a connection whose handler waited off its event loop, to a goroutine of its own until its frames were handled.",
	}, func() float64 { return float64(s.loops.Load().Handoffs()) })
}

// loopRingEnters is metamesh_event_loop_ring_enters_total: the
// io_uring_enter calls that read the event loops' readable sockets or sent
// their turns' writes (proxy/wire's Loop; 0 in goroutine mode, with
// --io-uring=false, or where the kernel has no io_uring). /proc/PID/io's
// syscr and syscw do not count them.
func (s *Server) loopRingEnters() prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "metamesh_event_loop_ring_enters_total",
		Help: "io_uring_enter system calls the epoll I/O mode's event loops made, each reading two or more readable sockets or sending one turn's writes to two or more.",
	}, func() float64 { return float64(s.loops.Load().RingEnters()) })
}

// upstreamStats counts the upstream pools' events.
func (s *Server) upstreamStats() upstream.Stats {
	m := s.metrics
	return upstream.Stats{
		ConnOpened:  m.ConnOpened,
		ConnClosed:  m.ConnClosed,
		UnknownResp: func(addr string) { m.UnknownReplies.WithLabelValues(addr).Inc() },
		BadFrame: func(_ string, codec protocols.Codec) {
			m.DecodeErrors.WithLabelValues(s.codecName(codec), "upstream").Inc()
		},
	}
}

// codecName is the name listeners in force give codec ("" when none
// uses it any more).
func (s *Server) codecName(codec protocols.Codec) string {
	if snap := s.snap.Load(); snap != nil {
		for _, l := range snap.Listeners {
			switch codec {
			case l.Codec:
				return l.CodecName
			case l.Triple:
				return config.TripleCodec
			}
		}
	}
	return ""
}

// retireSeries tells the metrics which hosts, clusters and policies of old, the
// config in force, next leaves out and which it brings back, so the
// series of those gone are deleted after a while (metrics.Retire).
func (s *Server) retireSeries(old, next *config.Config) {
	oldHosts, oldClusters := namesOf(old)
	newHosts, newClusters := namesOf(next)
	oldPolicies, newPolicies := policiesOf(old), policiesOf(next)
	var gone, back metrics.Retired
	gone.Hosts, back.Hosts = diff(oldHosts, newHosts), diff(newHosts, oldHosts)
	gone.Clusters, back.Clusters = diff(oldClusters, newClusters), diff(newClusters, oldClusters)
	gone.Policies, back.Policies = diff(oldPolicies, newPolicies), diff(newPolicies, oldPolicies)
	s.metrics.Retire(time.Now(), gone, back)
}

// policiesOf returns the policy labels of snap's authorization policies.
func policiesOf(snap *config.Config) map[string]struct{} {
	out := map[string]struct{}{}
	if snap == nil {
		return out
	}
	for _, l := range snap.Listeners {
		if l.Authz != nil {
			for _, p := range l.Authz.Labels() {
				out[p] = struct{}{}
			}
		}
	}
	return out
}

// namesOf returns the host addresses and cluster names of snap.
func namesOf(snap *config.Config) (hosts, clusters map[string]struct{}) {
	hosts, clusters = map[string]struct{}{}, map[string]struct{}{}
	if snap == nil {
		return hosts, clusters
	}
	for name, cl := range snap.Clusters {
		clusters[name] = struct{}{}
		for _, e := range cl.Endpoints {
			hosts[e.Host.Addr] = struct{}{}
		}
	}
	return hosts, clusters
}

// diff lists the keys of a that b lacks.
func diff(a, b map[string]struct{}) []string {
	var out []string
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}
