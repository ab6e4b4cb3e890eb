package interop

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	hessian "github.com/apache/dubbo-go-hessian2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/testdata/peers/capture"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// TestPolicyTimeout: a provider that takes 3 s gets the route's 1 s
// timeout reply (SERVER_TIMEOUT, naming the route) at 1 s ± 20%, and the
// same client's next call is served.
func TestPolicyTimeout(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 100, Policy: "timeout: 1s"}
	startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{})
	ctx := context.Background()

	start := time.Now()
	reply, err := c.Sleep(ctx, 3000)
	took := time.Since(start)
	t.Logf("Sleep(3000) through a 1s route timeout: %q, %v after %v", reply, err, took)
	if err == nil || !strings.Contains(err.Error(), "route canary") || !strings.Contains(err.Error(), "no reply within 1s") {
		t.Fatalf("Sleep(3000) = %q, %v; want the timeout error naming route canary", reply, err)
	}
	if took < 800*time.Millisecond || took > 1200*time.Millisecond {
		t.Fatalf("timeout reply after %v, want 1s ± 20%%", took)
	}
	if reply, err := c.SayHello(ctx, "after"); err != nil || reply != "v1|after" {
		t.Fatalf("after the timeout: %q, %v", reply, err)
	}
}

// TestDeadEndpoint: v1 lists a port nobody listens on beside the real
// provider, ROUND_ROBIN, no outlier detection. 64 dubbo-go callers make
// 640 calls, with retries on connect-failure and without any: not one
// fails (nothing reached the dead host, so the call moves on at once), and
// the dead host is marked unreachable once.
func TestDeadEndpoint(t *testing.T) {
	for _, policy := range []string{"", "retry_policy: {retry_on: connect-failure, num_retries: 3}"} {
		v1, v2 := greeters(t)
		r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 100, V1Extra: harness.DeadAddr(t), Policy: policy}
		srv := startProxy(t, r)
		c := newClient(t, r.Listen, dubboclient.Options{})
		var failed atomic.Int64
		parallel(t, 64, 10, func(g, i int) {
			if reply, err := c.SayHello(context.Background(), payload(g, i)); err != nil || reply != "v1|"+payload(g, i) {
				if failed.Add(1) == 1 {
					t.Logf("policy %q: first failure: %q, %v", policy, reply, err)
				}
			}
		})
		cluster := "outbound|20880|v1|" + iface
		unreachable := testutil.ToFloat64(srv.Metrics().Unreachable.WithLabelValues(cluster))
		t.Logf("policy %q: %d of 640 calls failed; dead host marked unreachable %v time(s)", policy, failed.Load(), unreachable)
		if failed.Load() != 0 {
			t.Errorf("policy %q: %d of 640 calls failed with one dead endpoint", policy, failed.Load())
		}
		if unreachable != 1 {
			t.Errorf("policy %q: metamesh_upstream_unreachable_total = %v, want 1", policy, unreachable)
		}
	}
}

// TestPolicyMaxPending: 10,000 requests at once against a limit of 100
// in flight: 100 reach the provider (which sleeps 1 s), the rest get the
// overloaded reply (status 100) at once; the proxy's live heap is the same
// after a second such burst. On a loaded machine the proxy may still be
// reading the burst when the first 100 are answered, so more may be
// served: never more than 100 for each second the proxy spent admitting.
func TestPolicyMaxPending(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 100, Thresholds: "{max_requests: 100}"}
	srv := startProxy(t, r)
	const sleep = time.Second
	burst := func() (res burstResult) {
		const conns, perConn = 10, 1000
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := time.Now()
		for g := range conns {
			wg.Go(func() {
				b := sleepBurst(t, r.Listen, g*perConn, perConn, int32(sleep/time.Millisecond))
				mu.Lock()
				res.add(b)
				mu.Unlock()
			})
		}
		wg.Wait()
		res.admitting = res.admittedBy(sleep).Sub(start)
		return res
	}
	b := burst()
	// A slot is free again only once its request's sleep is over, so in
	// the time the proxy was admitting requests it can have let at most
	// 100 through per started second.
	most := 100 * (1 + int(b.admitting/sleep))
	t.Logf("burst 1: %d served, %d overloaded; admitting for at most %v: at most %d served", b.served, b.overloaded, b.admitting, most)
	if b.served+b.overloaded != 10000 || b.served < 100 || b.served > most {
		t.Fatalf("%d served and %d overloaded of 10,000; want 100 served (the limit; at most %d in %v of admitting) and the rest overloaded", b.served, b.overloaded, most, b.admitting)
	}
	base := liveHeap()
	b = burst()
	served, overloaded := b.served, b.overloaded
	after := liveHeap()
	t.Logf("burst 2: %d served, %d overloaded; live heap %d KiB before, %d KiB after", served, overloaded, base>>10, after>>10)
	if int64(after)-int64(base) > 4<<20 {
		t.Fatalf("live heap grew %d KiB over a burst of 10,000", (int64(after)-int64(base))>>10)
	}
	if n := testutil.ToFloat64(srv.Metrics().Active.WithLabelValues("dubbo")); n != 0 {
		t.Fatalf("requests_active = %v after every reply", n)
	}
}

// burstResult counts the replies to a burst of Sleep requests, with when
// the last of each kind arrived.
type burstResult struct {
	served, overloaded      int
	lastServed, lastRefusal time.Time
	admitting               time.Duration // set by the test
}

func (r *burstResult) add(o burstResult) {
	r.served += o.served
	r.overloaded += o.overloaded
	if o.lastServed.After(r.lastServed) {
		r.lastServed = o.lastServed
	}
	if o.lastRefusal.After(r.lastRefusal) {
		r.lastRefusal = o.lastRefusal
	}
}

// admittedBy is a time by which the proxy had taken its decision on every
// request of the burst: each refused one before its reply arrived, each
// served one at least sleep before its reply arrived.
func (r *burstResult) admittedBy(sleep time.Duration) time.Time {
	if t := r.lastServed.Add(-sleep); t.After(r.lastRefusal) {
		return t
	}
	return r.lastRefusal
}

// sleepBurst writes n Sleep(ms) requests (IDs from first+1) on one
// connection at once and reads every reply, counting the provider's
// ("v1|slept") and the proxy's overloaded ones (status 100).
func sleepBurst(t *testing.T, addr string, first, n int, ms int32) (res burstResult) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Error(err)
		return res
	}
	defer nc.Close()
	var out []byte
	for i := range n {
		out = appendSleep(out, uint64(first+i+1), ms)
	}
	go func() { _, _ = nc.Write(out) }()
	codec, _ := dubbo.New(nil)
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var buf []byte
	tmp := make([]byte, 64<<10)
	var m protocols.Message
	for res.served+res.overloaded < n {
		k, err := codec.Decode(buf, &m)
		if err != nil {
			t.Error(err)
			return res
		}
		if k == 0 {
			r, err := nc.Read(tmp)
			if err != nil {
				t.Errorf("after %d replies: %v", res.served+res.overloaded, err)
				return res
			}
			buf = append(buf, tmp[:r]...)
			continue
		}
		status, value, err := dubbo.ParseResponseValue(buf[:k])
		buf = buf[k:]
		switch {
		case err == nil && status == 20 && value == "v1|slept":
			res.served++
			res.lastServed = time.Now()
		case err == nil && status == 100 && strings.Contains(value, "limit"):
			res.overloaded++
			res.lastRefusal = time.Now()
		default:
			t.Errorf("reply %d: status %d %q, %v", m.ID, status, value, err)
			return res
		}
	}
	return res
}

// appendSleep appends a two-way Dubbo request GreetingsService.Sleep(ms)
// as dubbo-go writes it (see protocols/dubbo/testdata/captured).
func appendSleep(dst []byte, id uint64, ms int32) []byte {
	e := hessian.NewEncoder()
	for _, v := range []any{"2.0.2", iface, "", "Sleep", "I", ms,
		map[any]any{"path": iface, "interface": iface}} {
		_ = e.Encode(v)
	}
	body := e.Buffer()
	var h [16]byte
	h[0], h[1], h[2] = 0xda, 0xbb, 0xc2
	binary.BigEndian.PutUint64(h[4:], id)
	binary.BigEndian.PutUint32(h[12:], uint32(len(body)))
	return append(append(dst, h[:]...), body...)
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestPolicyRateLimit: a MetaRouter bucket of 100 per second holds a
// client that asks at least twice that to 100/s ± 10% over 5 s, answering
// the rest with the rate-limited reply.
func TestPolicyRateLimit(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 100,
		RateLimit: "token_bucket: {max_tokens: 100, tokens_per_fill: 100, fill_interval: 1s}"}
	srv := startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{})
	hammer := func(d time.Duration) (ok, limited int64) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		for g := range 8 {
			wg.Go(func() {
				for i := 0; time.Now().Before(deadline); i++ {
					_, err := c.SayHello(context.Background(), payload(g, i))
					mu.Lock()
					switch {
					case err == nil:
						ok++
					case strings.Contains(err.Error(), "rate limited"):
						limited++
					default:
						t.Errorf("caller %d: %v", g, err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return ok, limited
	}
	hammer(time.Second) // drain the initial burst of 100
	ok, limited := hammer(5 * time.Second)
	rate := float64(ok) / 5
	t.Logf("over 5 s: %d served (%.1f/s), %d rate limited", ok, rate, limited)
	if rate < 90 || rate > 110 {
		t.Fatalf("%.1f requests/s served, want 100 ± 10%%", rate)
	}
	// The client must ask for well over the limit, or the rate above
	// says nothing about the bucket: at least twice as much. (Eight
	// callers ask about ten times as much on a quiet machine, less when
	// the machine runs other suites beside this one.)
	if limited < ok {
		t.Fatalf("only %d requests limited: the client did not ask for twice the limit", limited)
	}
	if n := testutil.ToFloat64(srv.Metrics().LocalReplies.WithLabelValues("dubbo", "rate_limited")); n < float64(limited) {
		t.Fatalf("local_replies{reason=rate_limited} = %v, want at least %d", n, limited)
	}
}

// TestPolicyMirror: 10% of the requests to v1 are copied to v2 (through
// a recording relay): the client only ever sees v1's replies, v2 answers
// the copies, and the share is 10% ± 3 points.
func TestPolicyMirror(t *testing.T) {
	v1, v2 := greeters(t)
	relay, err := capture.NewRelay(v2.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: relay.Addr(), W1: 100,
		Policy: `request_mirror_policies: [{cluster: "outbound|20880|v2|` + iface + `", runtime_fraction: {default_value: {numerator: 10}}}]`}
	srv := startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{})
	const n = 2000
	parallel(t, 8, n/8, func(g, i int) {
		if reply, err := c.SayHello(context.Background(), payload(g, i)); err != nil || reply != "v1|"+payload(g, i) {
			t.Errorf("caller %d call %d: %q, %v; want v1's reply", g, i, reply, err)
		}
	})
	sent := testutil.ToFloat64(srv.Metrics().Mirrors.WithLabelValues("dubbo", iface, "canary", "outbound|20880|v2|"+iface, "sent"))
	answered := func() (req, resp int) {
		for _, f := range relay.Frames() {
			switch {
			case f.IsEvent():
			case f.IsRequest():
				req++
			default:
				resp++
			}
		}
		return req, resp
	}
	waitFor(t, 5*time.Second, "v2 to answer every copy", func() bool { req, resp := answered(); return req == int(sent) && resp == req })
	share := sent / n * 100
	t.Logf("%d requests, %v copied to v2 (%.1f%%)", n, sent, share)
	if share < 7 || share > 13 {
		t.Fatalf("%.1f%% mirrored, want 10 ± 3", share)
	}
}

// TestPolicyOutlierDetection: v1 has two providers; one is killed and its
// port taken by a peer that resets every connection: the resets eject it
// after 3 in a row (every call still succeeds, retried on the other),
// /clusters shows it ejected, and once the provider is back it is
// readmitted after the ejection time. (A port nobody listens on is not
// ejected but marked unreachable at once: TestDeadEndpoint.)
func TestPolicyOutlierDetection(t *testing.T) {
	v1, v2 := greeters(t)
	v1b := harness.StartGreeterWith(t, harness.GreeterOptions{Version: "v1b"})
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V1Extra: v1b.Addr, V2: v2.Addr, W1: 100,
		Policy:  `retry_policy: {retry_on: "connect-failure,reset", num_retries: 1}`,
		Outlier: "{consecutive_5xx: 3, base_ejection_time: 2s, max_ejection_percent: 50}"}
	srv := startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{})
	call := func(i int) string {
		reply, err := c.SayHello(context.Background(), payload(0, i))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		return versionOf(reply)
	}
	cluster := "outbound|20880|v1|" + iface
	v1b.Kill()
	<-v1b.Done()
	stopResetter := harness.StartResetter(t, v1b.Addr)
	// A call between the kill and the resetter's bind finds the port
	// closed: the host is then unreachable, skipped until the background
	// reconnect (after 200 ms) reaches the resetter, and only then do
	// resets count. So call until it is ejected, every call succeeding.
	until := sendUntilEjected(t, srv, cluster, v1b.Addr, func(i int) { call(i) })
	t.Logf("resetting provider ejected until %v", until.Format(time.StampMilli))
	stopResetter()

	harness.StartGreeterWith(t, harness.GreeterOptions{Version: "v1b", Addr: v1b.Addr})
	for i := range 10 {
		if v := call(100 + i); v != "v1" {
			t.Fatalf("call %d went to %s while it is ejected", i, v)
		}
	}
	// Once the ejection time is over the host is back in the balancer,
	// but the proxy may have redialled it while the resetter was gone and
	// the provider not yet listening: it is then unreachable until its
	// background reconnect (200 ms, then ×1.6) succeeds. So call until
	// the provider answers, at most 10 s after the ejection ends.
	time.Sleep(time.Until(until) + 100*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; call(200+i) != "v1b"; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted provider was not readmitted within 10 s of its ejection time (%d calls)", i+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendUntilEjected calls send(0), send(1)... until host of cluster is
// ejected, at most 10 s, and returns until when.
func sendUntilEjected(t *testing.T, srv *proxy.Server, cluster, host string, send func(i int)) time.Time {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		send(i)
		if until, ok := hostEjected(srv, cluster, host); ok {
			t.Logf("%s ejected after %d requests", host, i+1)
			return until
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not ejected after %d requests in 10s", host, i+1)
		}
	}
}

// hostEjected reports until when host of cluster is ejected, if it is.
func hostEjected(srv *proxy.Server, cluster, host string) (time.Time, bool) {
	now := time.Now()
	for _, e := range srv.Snapshot().Clusters[cluster].Endpoints {
		if e.Host.Addr == host {
			u := e.Host.EjectedUntil(now)
			return u, !u.IsZero()
		}
	}
	return time.Time{}, false
}

// TestPolicyFaultInjection: a route that aborts 30% of its requests with
// status 70 (SERVICE_ERROR), and one that delays all of them by 300ms,
// each seen by a real dubbo-go client.
func TestPolicyFaultInjection(t *testing.T) {
	v1, v2 := greeters(t)
	t.Run("abort", func(t *testing.T) {
		r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 100, Fault: "fault: {abort: {status: 70, percentage: 30}}"}
		startProxy(t, r)
		c := newClient(t, r.Listen, dubboclient.Options{})
		aborted := 0
		for i := range 500 {
			reply, err := c.SayHello(context.Background(), payload(0, i))
			switch {
			case err == nil && reply == "v1|"+payload(0, i):
			case err != nil && strings.Contains(err.Error(), "fault injected"):
				aborted++
			default:
				t.Fatalf("call %d: %q, %v", i, reply, err)
			}
		}
		t.Logf("%d of 500 aborted at 30%%", aborted)
		if aborted < 110 || aborted > 190 {
			t.Fatalf("%d of 500 aborted, want about 150", aborted)
		}
	})
	t.Run("delay", func(t *testing.T) {
		r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 100, Fault: "fault: {delay: {fixed_delay: 0.3s, percentage: 100}}"}
		startProxy(t, r)
		c := newClient(t, r.Listen, dubboclient.Options{})
		start := time.Now()
		reply, err := c.SayHello(context.Background(), "late")
		if took := time.Since(start); err != nil || reply != "v1|late" || took < 300*time.Millisecond {
			t.Fatalf("%q, %v after %v; want v1's reply after the 300ms delay", reply, err, took)
		}
	})
}
