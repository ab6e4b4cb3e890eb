package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultRetireAfter is how long the series of an upstream host or a
// cluster that left the config are kept before they are deleted: long
// enough for scrapes to see their final values, short enough that pod
// churn doesn't grow the registry without end.
const DefaultRetireAfter = 5 * time.Minute

// retirement tracks the upstream hosts, clusters and authorization
// policies that left the config, and the upstream connections open, so
// their series can be deleted once they have been gone for RetireAfter (a
// host's only once its last connection has closed: its gauge must not
// come back at -1).
type retirement struct {
	mu       sync.Mutex
	open     map[string]int       // upstream → connections open, if any
	hosts    map[string]time.Time // upstream → when it left the config
	clusters map[string]time.Time // cluster → when it left the config
	policies map[string]time.Time // policy label → when it left the config
	timer    *time.Timer          // the next sweep, if one is due
}

// ConnOpened counts an upstream connection opened to addr.
func (m *Proxy) ConnOpened(addr string) {
	r := &m.retired
	r.mu.Lock()
	r.open[addr]++
	m.UpstreamCx.WithLabelValues(addr).Inc()
	r.mu.Unlock()
}

// ConnClosed counts an upstream connection to addr closed; the last one
// to a host gone for RetireAfter deletes its series.
func (m *Proxy) ConnClosed(addr string) {
	r := &m.retired
	r.mu.Lock()
	defer r.mu.Unlock()
	m.UpstreamCx.WithLabelValues(addr).Dec()
	if r.open[addr]--; r.open[addr] > 0 {
		return
	}
	delete(r.open, addr)
	if since, gone := r.hosts[addr]; gone && time.Since(since) >= m.RetireAfter {
		m.deleteHostLocked(addr)
	}
}

// Retire records that hosts, clusters and policies left the config at now, and
// that those in back returned to it; it then deletes the series of what
// has been gone for RetireAfter, and schedules the next such deletion.
func (m *Proxy) Retire(now time.Time, gone, back Retired) {
	r := &m.retired
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range back.Hosts {
		delete(r.hosts, h)
	}
	for _, c := range back.Clusters {
		delete(r.clusters, c)
	}
	for _, p := range back.Policies {
		delete(r.policies, p)
	}
	for _, h := range gone.Hosts {
		if _, ok := r.hosts[h]; !ok {
			r.hosts[h] = now
		}
	}
	for _, c := range gone.Clusters {
		if _, ok := r.clusters[c]; !ok {
			r.clusters[c] = now
		}
	}
	for _, p := range gone.Policies {
		if _, ok := r.policies[p]; !ok {
			r.policies[p] = now
		}
	}
	m.sweepLocked(now)
}

// Retired names hosts (upstream addresses), clusters and the policy
// labels of authorization policies.
type Retired struct{ Hosts, Clusters, Policies []string }

// sweep is the scheduled sweep.
func (m *Proxy) sweep() {
	m.retired.mu.Lock()
	defer m.retired.mu.Unlock()
	m.retired.timer = nil
	m.sweepLocked(time.Now())
}

// sweepLocked deletes the series of the hosts, clusters and policies gone for
// RetireAfter at now (hosts with connections still open wait for
// ConnClosed), and schedules a sweep for the next one due.
func (m *Proxy) sweepLocked(now time.Time) {
	r := &m.retired
	var next time.Duration
	due := func(since time.Time) bool {
		left := m.RetireAfter - now.Sub(since)
		if left > 0 && (next == 0 || left < next) {
			next = left
		}
		return left <= 0
	}
	for h, since := range r.hosts {
		if due(since) && r.open[h] == 0 {
			m.deleteHostLocked(h)
		}
	}
	for c, since := range r.clusters {
		if due(since) {
			m.deleteClusterLocked(c)
		}
	}
	for p, since := range r.policies {
		if due(since) {
			delete(r.policies, p)
			m.Authz.Denied.DeleteLabelValues(p)
			m.Authz.DryRunDenied.DeleteLabelValues(p)
			m.Authz.Audited.DeleteLabelValues(p)
		}
	}
	if next > 0 && r.timer == nil {
		r.timer = time.AfterFunc(next, m.sweep)
	}
}

// deleteHostLocked deletes the upstream-labelled series of addr.
func (m *Proxy) deleteHostLocked(addr string) {
	delete(m.retired.hosts, addr)
	m.UpstreamCx.DeleteLabelValues(addr)
	m.UnknownReplies.DeleteLabelValues(addr)
	m.RedisCluster.NodeDuration.DeletePartialMatch(prometheus.Labels{"node": addr})
}

// deleteClusterLocked deletes every series labelled with cluster c, and
// the cached handles of its request series.
func (m *Proxy) deleteClusterLocked(c string) {
	delete(m.retired.clusters, c)
	match := prometheus.Labels{"cluster": c}
	m.Requests.DeletePartialMatch(match)
	m.Duration.DeletePartialMatch(match)
	m.Retries.DeletePartialMatch(match)
	m.Mirrors.DeletePartialMatch(match)
	m.Ejections.DeletePartialMatch(match)
	m.Unreachable.DeletePartialMatch(match)
	m.RedisCluster.NodeDuration.DeletePartialMatch(match)
	m.series.Range(func(k, _ any) bool {
		if k.(seriesKey).cluster == c {
			m.series.Delete(k)
		}
		return true
	})
}
