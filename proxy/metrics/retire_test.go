package metrics

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Series of a gone host or cluster stay for RetireAfter, then go; a host's
// wait for its last connection to close; a returning one keeps them.
func TestRetireAfterGrace(t *testing.T) {
	m := NewProxy()
	m.RetireAfter = time.Minute
	t0 := time.Now().Add(-time.Hour) // long gone for ConnClosed's clock
	m.ConnOpened("10.0.0.1:6379")
	m.UnknownReplies.WithLabelValues("10.0.0.1:6379").Inc()
	m.Series("redis", "cache", "all", "old").Done("ok", time.Millisecond)
	m.Series("redis", "cache", "all", "back").Done("ok", time.Millisecond)
	m.Retries.WithLabelValues("redis", "cache", "all", "old").Inc()
	count := func() (host, old, back int) {
		return testutil.CollectAndCount(m.UpstreamCx) + testutil.CollectAndCount(m.UnknownReplies),
			testutil.CollectAndCount(m.Retries) + countCluster(t, m, "old"), countCluster(t, m, "back")
	}

	m.Retire(t0, Retired{Hosts: []string{"10.0.0.1:6379"}, Clusters: []string{"old", "back"}}, Retired{})
	m.Retire(t0.Add(time.Second), Retired{}, Retired{Clusters: []string{"back"}})
	// A request series is requests_total ok and error, and the histogram.
	if h, o, b := count(); h != 2 || o != 4 || b != 3 {
		t.Fatalf("at once: %d host, %d old, %d back series; want 2, 4, 3", h, o, b)
	}
	m.Retire(t0.Add(time.Minute-time.Second), Retired{}, Retired{})
	if h, o, _ := count(); h != 2 || o != 4 {
		t.Fatalf("before RetireAfter: %d host, %d old series; want 2, 4", h, o)
	}
	m.Retire(t0.Add(time.Minute), Retired{}, Retired{})
	if h, o, b := count(); h != 2 || o != 0 || b != 3 {
		t.Fatalf("after RetireAfter: %d host (a connection is open), %d old, %d back series; want 2, 0, 3", h, o, b)
	}
	m.ConnClosed("10.0.0.1:6379")
	if h, _, _ := count(); h != 0 {
		t.Fatalf("after the last connection closed: %d host series, want 0", h)
	}
	// A request of the deleted cluster that finishes late counts in a new
	// series, not in a cached handle of the deleted one.
	m.Series("redis", "cache", "all", "old").Done("ok", time.Millisecond)
	if got := testutil.ToFloat64(m.Requests.WithLabelValues("redis", "cache", "all", "old", "ok")); got != 1 {
		t.Fatalf("requests_total of a late request = %v, want 1", got)
	}
}

// countCluster counts the request series labelled with cluster c.
func countCluster(t *testing.T, m *Proxy, c string) int {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "metamesh_requests_total" && mf.GetName() != "metamesh_request_duration_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "cluster" && l.GetValue() == c {
					n++
				}
			}
		}
	}
	return n
}

// The series of an authorization policy that left the config go after
// RetireAfter; one that came back keeps them.
func TestRetirePolicies(t *testing.T) {
	m := NewProxy()
	m.RetireAfter = time.Minute
	t0 := time.Now()
	for _, p := range []string{"prod/gone", "prod/back"} {
		m.Authz.Denied.WithLabelValues(p).Inc()
		m.Authz.DryRunDenied.WithLabelValues(p).Inc()
		m.Authz.Audited.WithLabelValues(p).Inc()
	}
	count := func() int {
		return testutil.CollectAndCount(m.Authz.Denied) + testutil.CollectAndCount(m.Authz.DryRunDenied) + testutil.CollectAndCount(m.Authz.Audited)
	}
	m.Retire(t0, Retired{Policies: []string{"prod/gone", "prod/back"}}, Retired{})
	m.Retire(t0.Add(time.Second), Retired{}, Retired{Policies: []string{"prod/back"}})
	if n := count(); n != 6 {
		t.Fatalf("before RetireAfter: %d policy series, want 6", n)
	}
	m.Retire(t0.Add(time.Minute), Retired{}, Retired{})
	if n := count(); n != 3 {
		t.Fatalf("after RetireAfter: %d policy series, want the 3 of the policy that came back", n)
	}
	if got := testutil.ToFloat64(m.Authz.Denied.WithLabelValues("prod/back")); got != 1 {
		t.Fatalf("the returning policy's count = %v, want 1", got)
	}
}
