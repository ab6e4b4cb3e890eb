package interop

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	athrift "github.com/apache/thrift/lib/go/thrift"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/thrift"
)

// TestThriftPolicyTimeout: a call the server takes 3 s over gets the
// route's 1 s timeout as a TApplicationException INTERNAL_ERROR at 1 s ±
// 20%. The upstream model is exclusive: a TSimpleServer answers one call
// per connection at a time, so the timed-out connection is closed and the
// next call gets a fresh one instead of waiting behind the slow call.
func TestThriftPolicyTimeout(t *testing.T) {
	combo := thrift.Combos[0]
	listen, _, _, _ := startThriftProxy(t, thriftRoutes{W1: 100, Upstream: "exclusive", Policy: "timeout: 1s"}, combo)
	c := thrift.Dial(t, listen, combo)
	ctx := context.Background()
	start := time.Now()
	_, err := c.Echo(ctx, "sleep:3000")
	took := time.Since(start)
	var ae athrift.TApplicationException
	t.Logf("echo(sleep:3000) through a 1s route timeout: %v after %v", err, took)
	if !errors.As(err, &ae) || ae.TypeId() != athrift.INTERNAL_ERROR || !strings.Contains(ae.Error(), "no reply within 1s") {
		t.Fatalf("err = %v, want a TApplicationException INTERNAL_ERROR naming the timeout", err)
	}
	if took < 800*time.Millisecond || took > 1200*time.Millisecond {
		t.Fatalf("timeout reply after %v, want 1s ± 20%%", took)
	}
	if got, err := c.Echo(ctx, "after"); err != nil || got != "v1|after" {
		t.Fatalf("after the timeout: %q, %v", got, err)
	}
}

// TestThriftDeadEndpoint: v1 lists a port nobody listens on beside the
// real server; 16 apache/thrift clients make 400 calls, with retries on
// connect-failure and without: none fails, and the dead host is marked
// unreachable once.
func TestThriftDeadEndpoint(t *testing.T) {
	combo := thrift.Combos[0]
	for _, policy := range []string{"", "retry_policy: {retry_on: connect-failure, num_retries: 3}"} {
		listen, _, _, srv := startThriftProxy(t, thriftRoutes{W1: 100, Upstream: "multiplexed", V1Extra: harness.DeadAddr(t),
			Policy: policy}, combo)
		clients := make([]*thrift.Client, 16)
		for i := range clients {
			clients[i] = thrift.Dial(t, listen, combo)
		}
		var failed atomic.Int64
		parallel(t, len(clients), 25, func(g, i int) {
			if got, err := clients[g].Echo(context.Background(), payload(g, i)); err != nil || got != "v1|"+payload(g, i) {
				if failed.Add(1) == 1 {
					t.Logf("policy %q: first failure: %q, %v", policy, got, err)
				}
			}
		})
		unreachable := testutil.ToFloat64(srv.Metrics().Unreachable.WithLabelValues("outbound|9090|v1|echo"))
		t.Logf("policy %q: %d of 400 calls failed; dead host marked unreachable %v time(s)", policy, failed.Load(), unreachable)
		if failed.Load() != 0 || unreachable != 1 {
			t.Errorf("policy %q: %d of 400 calls failed, unreachable_total %v; want 0 and 1", policy, failed.Load(), unreachable)
		}
	}
}

// TestThriftPolicyOutlier: a second v1 server is stopped and its port
// taken by a peer that resets every connection; the resets eject it, and
// restarted on the same address it is readmitted after the ejection time.
func TestThriftPolicyOutlier(t *testing.T) {
	combo := thrift.Combos[0]
	v1b, stop, err := thrift.Serve("v1b", "127.0.0.1:0", combo)
	if err != nil {
		t.Fatal(err)
	}
	listen, _, _, srv := startThriftProxy(t, thriftRoutes{W1: 100, Upstream: "multiplexed", V1Extra: v1b.Addr,
		Policy:  `retry_policy: {retry_on: "connect-failure,reset", num_retries: 1}`,
		Outlier: "{consecutive_5xx: 3, base_ejection_time: 2s, max_ejection_percent: 50}"}, combo)
	c := thrift.Dial(t, listen, combo)
	call := func(i int) string {
		got, err := c.Echo(context.Background(), payload(0, i))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		return versionOf(got)
	}
	stop()
	stopResetter := harness.StartResetter(t, v1b.Addr)
	for i := range 20 {
		call(i)
	}
	until, ok := hostEjected(srv, "outbound|9090|v1|echo", v1b.Addr)
	if !ok {
		t.Fatal("the resetting server is not ejected after 20 calls")
	}
	stopResetter()
	_, stop, err = thrift.Serve("v1b", v1b.Addr, combo)
	if err != nil {
		t.Fatalf("restart on %s: %v", v1b.Addr, err)
	}
	t.Cleanup(stop)
	for i := range 10 {
		if v := call(100 + i); v != "v1" {
			t.Fatalf("call %d went to %s while it is ejected", i, v)
		}
	}
	time.Sleep(time.Until(until) + 100*time.Millisecond)
	seen := false
	for i := range 20 {
		seen = seen || call(200+i) == "v1b"
	}
	if !seen {
		t.Fatal("the restarted server was not readmitted after its ejection time")
	}
}
