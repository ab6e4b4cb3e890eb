package proxy

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

func TestRouteTimeout(t *testing.T) {
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{up.addr()}, Policy: "timeout: 0.2s"})
	c := dial(t, addr)

	up.delay.Store(int64(time.Second))
	start := time.Now()
	status, value := c.call(1, svc, "slow")
	took := time.Since(start)
	if status != 31 || !strings.Contains(value, "route default") || !strings.Contains(value, "200ms") {
		t.Fatalf("status %d %q, want 31 (SERVER_TIMEOUT) naming the route and the timeout", status, value)
	}
	t.Logf("timeout reply after %v", took)
	if took < 200*time.Millisecond {
		t.Fatalf("timeout reply after %v, before the route's 200ms", took)
	}

	// The late reply is dropped: the next call on the same connection
	// gets its own reply, and the late one is counted as unmatched (the
	// timeout withdrew its request ID from the upstream connection).
	up.delay.Store(0)
	if status, value := c.call(2, svc, "fast"); status != 20 || !strings.HasPrefix(value, "v1|fast|") {
		t.Fatalf("after a timeout: status %d %q, want v1's reply to call 2", status, value)
	}
	late := srv.Metrics().UnknownReplies.WithLabelValues(up.addr())
	waitUntil(t, 3*time.Second, "the late reply to be counted", func() bool { return testutil.ToFloat64(late) == 1 })
	if n := testutil.ToFloat64(srv.Metrics().Active.WithLabelValues("dubbo")); n != 0 {
		t.Fatalf("requests_active = %v after every reply", n)
	}
}

// A host that refuses connections costs no call, with or without a retry
// policy: nothing reached it, so the call moves to another host at once
// (not a retry of the policy's), and the host is left out until a
// reconnect succeeds.
func TestConnectFailureFailsOver(t *testing.T) {
	up := startEcho(t, "v1")
	dead := deadAddr(t)
	for _, policy := range []string{"", "retry_policy: {retry_on: connect-failure, num_retries: 1}"} {
		srv, addr := startProxy(t, setup{V1: []string{dead, up.addr()}, V2: []string{up.addr()}, Policy: policy})
		c := dial(t, addr)
		for i := range 10 {
			if status, value := c.call(uint64(i+1), svc, "m"); status != 20 || !strings.HasPrefix(value, "v1|m|") {
				t.Fatalf("policy %q: call %d: status %d %q, want v1's reply", policy, i, status, value)
			}
		}
		m := srv.Metrics()
		if n := testutil.ToFloat64(m.Retries.WithLabelValues("dubbo", svc, "default", "v1")); n != 0 {
			t.Errorf("policy %q: %v retries counted for calls that never reached a host", policy, n)
		}
		if n := testutil.ToFloat64(m.Unreachable.WithLabelValues("v1")); n != 1 {
			t.Errorf("policy %q: metamesh_upstream_unreachable_total{cluster=v1} = %v, want 1", policy, n)
		}
	}
}

// A host found unreachable comes back once a server listens there: the
// reconnect in the background finds it and the balancer picks it again.
func TestUnreachableHostComesBack(t *testing.T) {
	up := startEcho(t, "v1")
	port := reserveDeadPort(t)
	addr := port.addr
	srv, paddr := startProxy(t, setup{V1: []string{addr, up.addr()}, V2: []string{up.addr()}})
	c := dial(t, paddr)
	for i := range 4 {
		if status, value := c.call(uint64(i+1), svc, "m"); status != 20 || !strings.HasPrefix(value, "v1|m|") {
			t.Fatalf("call %d: status %d %q, want v1's reply while the other host is down", i, status, value)
		}
	}
	host := hostOf(t, srv, "v1", addr)
	if !host.Unreachable() {
		t.Fatalf("%s is not marked unreachable after refusing a connection", addr)
	}
	restarted := startEchoOn(t, "back", port.listen(t))
	waitUntil(t, 15*time.Second, "the host to be reachable again", func() bool { return !host.Unreachable() })
	seen := false
	for i := range 10 {
		if _, value := c.call(uint64(100+i), svc, "m"); strings.HasPrefix(value, "back|") {
			seen = true
		}
	}
	if !seen {
		t.Fatalf("no call reached %s after it came back (reachable again: %v)", restarted.addr(), !host.Unreachable())
	}
}

func TestRetryOnUnavailable(t *testing.T) {
	busy, ok := startEcho(t, "busy"), startEcho(t, "ok")
	busy.status.Store(100) // SERVER_THREADPOOL_EXHAUSTED
	_, addr := startProxy(t, setup{V1: []string{busy.addr(), ok.addr()}, V2: []string{ok.addr()},
		Policy: "retry_policy: {retry_on: unavailable, num_retries: 2}"})
	c := dial(t, addr)
	for i := range 10 {
		if status, value := c.call(uint64(i+1), svc, "m"); status != 20 || !strings.HasPrefix(value, "ok|") {
			t.Fatalf("call %d: status %d %q, want the healthy host's reply", i, status, value)
		}
	}
	if busy.requests.Load() == 0 {
		t.Fatal("the busy host got no request: the retry was never exercised")
	}
}

func TestPerTryTimeoutRetriesElsewhere(t *testing.T) {
	slow, fast := startEcho(t, "slow"), startEcho(t, "fast")
	slow.delay.Store(int64(2 * time.Second))
	_, addr := startProxy(t, setup{V1: []string{slow.addr(), fast.addr()}, V2: []string{fast.addr()},
		Policy: "timeout: 1s, retry_policy: {retry_on: reset, num_retries: 1, per_try_timeout: 0.1s}"})
	c := dial(t, addr)
	for i := range 6 {
		if status, value := c.call(uint64(i+1), svc, "m"); status != 20 || !strings.HasPrefix(value, "fast|") {
			t.Fatalf("call %d: status %d %q, want the fast host's reply", i, status, value)
		}
	}
	if slow.requests.Load() == 0 {
		t.Fatal("the slow host got no request: the per-try timeout was never exercised")
	}
}

func TestMaxRequestsOverloads(t *testing.T) {
	up := startEcho(t, "v1")
	up.delay.Store(int64(300 * time.Millisecond))
	_, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{up.addr()}, Thresholds: "{max_requests: 2}"})
	const n = 6
	statuses := make([]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := dial(t, addr)
			statuses[i], _ = c.call(uint64(i+1), svc, "m")
		})
	}
	wg.Wait()
	okN, overloaded := 0, 0
	for _, s := range statuses {
		switch s {
		case 20:
			okN++
		case 100:
			overloaded++
		default:
			t.Fatalf("statuses %v: want 20 or 100 only", statuses)
		}
	}
	if okN != 2 || overloaded != n-2 {
		t.Fatalf("statuses %v: want 2 served and %d overloaded (100)", statuses, n-2)
	}
}

func TestOutlierDetection(t *testing.T) {
	bad, good := startEcho(t, "bad"), startEcho(t, "good")
	bad.status.Store(80) // SERVER_ERROR
	srv, addr := startProxy(t, setup{V1: []string{bad.addr(), good.addr()}, V2: []string{good.addr()},
		Outlier: "{consecutive_5xx: 3, base_ejection_time: 0.3s, max_ejection_percent: 50}"})
	c := dial(t, addr)
	errs := 0
	for i := range 20 {
		if status, _ := c.call(uint64(i+1), svc, "m"); status == 80 {
			errs++
		}
	}
	if errs != 3 {
		t.Fatalf("%d of 20 calls failed; want the bad host ejected after its 3rd error", errs)
	}
	if _, ok := ejected(srv, "v1", bad.addr()); !ok {
		t.Fatal("the bad host is not shown ejected")
	}
	if n := scrape(t, srv, `metamesh_upstream_ejected{cluster="v1",upstream="`+bad.addr()+`"}`); n != 1 {
		t.Fatalf("metamesh_upstream_ejected for the bad host = %v, want 1", n)
	}
	if n := testutil.ToFloat64(srv.Metrics().Ejections.WithLabelValues("v1")); n != 1 {
		t.Fatalf("metamesh_outlier_ejections_total{cluster=v1} = %v, want 1", n)
	}
	bad.status.Store(0) // healed
	time.Sleep(350 * time.Millisecond)
	before := bad.requests.Load()
	for i := range 10 {
		if status, value := c.call(uint64(100+i), svc, "m"); status != 20 {
			t.Fatalf("after readmission: status %d %q", status, value)
		}
	}
	if bad.requests.Load() == before {
		t.Fatal("the healed host was not readmitted after its ejection time")
	}
}

func TestMirror(t *testing.T) {
	primary, shadow := startEcho(t, "primary"), startEcho(t, "shadow")
	shadow.delay.Store(int64(time.Second)) // a slow mirror must not slow the request
	srv, addr := startProxy(t, setup{V1: []string{primary.addr()}, V2: []string{shadow.addr()},
		Policy: "request_mirror_policies: [{cluster: v2, runtime_fraction: {default_value: {numerator: 50}}}]"})
	c := dial(t, addr)
	const n = 400
	start := time.Now()
	for i := range n {
		if status, value := c.call(uint64(i+1), svc, "m"); status != 20 || !strings.HasPrefix(value, "primary|") {
			t.Fatalf("call %d: status %d %q, want the primary's reply", i, status, value)
		}
	}
	took := time.Since(start)
	sent := testutil.ToFloat64(srv.Metrics().Mirrors.WithLabelValues("dubbo", svc, "default", "v2", "sent"))
	waitUntil(t, 5*time.Second, "the shadow to see every copy", func() bool { return float64(shadow.requests.Load()) == sent })
	t.Logf("%d calls in %v; %v mirrored", n, took, sent)
	if sent < n*0.4 || sent > n*0.6 {
		t.Fatalf("%v of %d requests mirrored at 50%%", sent, n)
	}
	if took > time.Second {
		t.Fatalf("%d calls took %v with a mirror that answers after 1s: the mirror delayed them", n, took)
	}
}

func TestLocalRateLimit(t *testing.T) {
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{up.addr()},
		RateLimit: `token_bucket: {max_tokens: 10, tokens_per_fill: 1, fill_interval: 100s},
			conditions: [{match: [{name: method, exact: ping}], token_bucket: {max_tokens: 3, tokens_per_fill: 1, fill_interval: 100s}}]`})
	c := dial(t, addr)
	count := func(method string, n int) (ok, limited int) {
		for i := range n {
			switch status, value := c.call(uint64(i+1), svc, method); {
			case status == 20:
				ok++
			case status == 100 && strings.Contains(value, "rate limited"):
				limited++
			default:
				t.Fatalf("%s %d: status %d %q", method, i, status, value)
			}
		}
		return ok, limited
	}
	// ping has a bucket of its own: it neither drains nor uses the other.
	if ok, limited := count("ping", 5); ok != 3 || limited != 2 {
		t.Fatalf("ping: %d served, %d limited; want 3 and 2 (its own bucket of 3)", ok, limited)
	}
	if ok, limited := count("sayHello", 15); ok != 10 || limited != 5 {
		t.Fatalf("sayHello: %d served, %d limited; want 10 and 5 (the host's bucket of 10)", ok, limited)
	}
	if n := testutil.ToFloat64(srv.Metrics().LocalReplies.WithLabelValues("dubbo", "rate_limited")); n != 7 {
		t.Fatalf("local_replies{reason=rate_limited} = %v, want 7", n)
	}
}

func TestFaultInjection(t *testing.T) {
	up := startEcho(t, "v1")
	t.Run("abort", func(t *testing.T) {
		_, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{up.addr()},
			Fault: "fault: {abort: {status: 70, percentage: 50}}"})
		c := dial(t, addr)
		aborted := 0
		for i := range 400 {
			switch status, value := c.call(uint64(i+1), svc, "m"); {
			case status == 20:
			case status == 70 && strings.Contains(value, "fault injected"):
				aborted++
			default:
				t.Fatalf("call %d: status %d %q", i, status, value)
			}
		}
		t.Logf("%d of 400 aborted at 50%%", aborted)
		if aborted < 150 || aborted > 250 {
			t.Fatalf("%d of 400 aborted, want about 200", aborted)
		}
	})
	t.Run("delay", func(t *testing.T) {
		_, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{up.addr()},
			Fault: "fault: {delay: {fixed_delay: 0.2s, percentage: 100}}"})
		c := dial(t, addr)
		start := time.Now()
		status, value := c.call(1, svc, "m")
		took := time.Since(start)
		if status != 20 || !strings.HasPrefix(value, "v1|") || took < 200*time.Millisecond {
			t.Fatalf("status %d %q after %v; want v1's reply after the 200ms delay", status, value, took)
		}
	})
}

// ejected reports when host of cluster is ejected until, if it is.
func ejected(srv *Server, cluster, host string) (time.Time, bool) {
	now := time.Now()
	for _, e := range srv.Snapshot().Clusters[cluster].Endpoints {
		if e.Host.Addr == host {
			u := e.Host.EjectedUntil(now)
			return u, !u.IsZero()
		}
	}
	return time.Time{}, false
}

// scrape returns the value of one series line in the proxy's /metrics
// text, or -1 when absent.
func scrape(t *testing.T, srv *Server, series string) float64 {
	t.Helper()
	mfs, err := srv.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}

// waitUntil polls ok until it holds or d passes.
func waitUntil(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
