package interop

import (
	"context"
	"errors"
	"strings"
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

// TestThriftPolicyRetry: v1 lists a port nobody listens on first; with
// retries on connect-failure every call is served.
func TestThriftPolicyRetry(t *testing.T) {
	combo := thrift.Combos[0]
	listen, _, _, srv := startThriftProxy(t, thriftRoutes{W1: 100, Upstream: "multiplexed", V1Extra: harness.FreeAddr(t),
		Policy: "retry_policy: {retry_on: connect-failure, num_retries: 1}"}, combo)
	c := thrift.Dial(t, listen, combo)
	for i := range 50 {
		if got, err := c.Echo(context.Background(), payload(0, i)); err != nil || got != "v1|"+payload(0, i) {
			t.Fatalf("call %d: %q, %v", i, got, err)
		}
	}
	if n := testutil.ToFloat64(srv.Metrics().Retries.WithLabelValues("thrift", "Echo", "split", "outbound|9090|v1|echo")); n == 0 {
		t.Fatal("no retries counted: the dead endpoint was never picked")
	}
}

// TestThriftPolicyOutlier: a second v1 server is stopped; its connect
// failures eject it, and restarted on the same address it is readmitted
// after the ejection time.
func TestThriftPolicyOutlier(t *testing.T) {
	combo := thrift.Combos[0]
	v1b, stop, err := thrift.Serve("v1b", "127.0.0.1:0", combo)
	if err != nil {
		t.Fatal(err)
	}
	listen, _, _, srv := startThriftProxy(t, thriftRoutes{W1: 100, Upstream: "multiplexed", V1Extra: v1b.Addr,
		Policy:  "retry_policy: {retry_on: connect-failure, num_retries: 1}",
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
	for i := range 20 {
		call(i)
	}
	until, ok := hostEjected(srv, "outbound|9090|v1|echo", v1b.Addr)
	if !ok {
		t.Fatal("the stopped server is not ejected after 20 calls")
	}
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
