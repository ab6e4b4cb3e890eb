package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
	"github.com/metamesh/metamesh/testdata/peers/thrift"
)

// rlsConfig is Aeraki's demo limit: sayHello, 10 a minute.
const rlsConfig = `domain: production
descriptors:
- key: method
  value: sayHello
  rate_limit: {unit: minute, requests_per_unit: 10}
`

// globalLimit is the GlobalRateLimit of Aeraki's demo MetaRouter, as xDS.
func globalLimit(denyOnFail bool) string {
	g := `domain: production, rate_limit_service: "` + rlsCluster + `", request_timeout: 2s,
      match: [{name: method, exact: sayHello}], descriptors: [{property: method, descriptor_key: method}]`
	if denyOnFail {
		g += ", deny_on_fail: true"
	}
	return g
}

// awayFromMinuteEnd waits, when the minute is about to turn, for the next
// one: the service counts in fixed one-minute windows, and a test that
// straddles two would see 20 calls allowed.
func awayFromMinuteEnd(t *testing.T) {
	if s := time.Now().Second(); s >= 45 {
		wait := time.Duration(61-s) * time.Second
		t.Logf("waiting %v for the next minute's window", wait)
		time.Sleep(wait)
	}
}

// countLimited makes 30 calls, away from the minute's end, call(i) sending
// payload(0, i), and counts those that passed (the reply "v1|" + payload)
// and those refused as rate limited; any other outcome fails the test.
func countLimited(t *testing.T, call func(i int) (string, error)) (passed, limited int) {
	t.Helper()
	awayFromMinuteEnd(t)
	for i := range 30 {
		reply, err := call(i)
		switch {
		case err == nil && reply == "v1|"+payload(0, i):
			passed++
		case err != nil && strings.Contains(err.Error(), "rate limited"):
			limited++
		default:
			t.Fatalf("call %d: %q, %v", i, reply, err)
		}
	}
	return passed, limited
}

// TestGlobalRateLimitDubbo: Envoy's own rate-limit service, counting in a
// real redis-server, limits sayHello to 10 a minute (Aeraki's demo). Two
// metamesh proxies ask it about each sayHello of real dubbo-go clients:
// of 30 calls through the two, exactly 10 pass and 20 get the rate-limited
// reply, while another method asks nothing and passes. With the service
// stopped, calls pass (fail-open) and the failures are counted; a proxy
// whose limit has deny_on_fail refuses them.
func TestGlobalRateLimitDubbo(t *testing.T) {
	red := redispeer.Start(t)
	rls := harness.StartRateLimitServer(t, red.Addr, rlsConfig)
	v1, v2 := greeters(t)
	base := routes{V1: v1.Addr, V2: v2.Addr, W1: 100, RLS: rls.Addr}
	var srvs [2]*proxy.Server
	var clients [2]*dubboclient.Client
	for i := range srvs {
		r := base
		r.Listen, r.Global = harness.FreeAddr(t), globalLimit(false)
		srvs[i] = startProxy(t, r)
		clients[i] = newClient(t, r.Listen, dubboclient.Options{})
	}
	deny := base
	deny.Listen, deny.Global = harness.FreeAddr(t), globalLimit(true)
	denySrv := startProxy(t, deny)
	denyClient := newClient(t, deny.Listen, dubboclient.Options{})
	ctx := context.Background()

	passed, limited := countLimited(t, func(i int) (string, error) {
		reply, err := clients[i%2].Call(ctx, "sayHello", payload(0, i))
		if i == 0 {
			// Another method is not limited, and asks nothing.
			if reply, err := clients[1].Sleep(ctx, 0); err != nil {
				t.Fatalf("Sleep(0) through a limit on sayHello: %q, %v", reply, err)
			}
		}
		return reply, err
	})
	var counted float64
	for _, s := range srvs {
		counted += testutil.ToFloat64(s.Metrics().RateLimit.Limited.WithLabelValues("dubbo", "global"))
	}
	t.Logf("30 sayHello through two proxies: %d passed, %d rate limited (counted %v)", passed, limited, counted)
	if passed != 10 || limited != 20 || counted != 20 {
		t.Fatalf("passed %d, limited %d, metamesh_rate_limited_total{kind=global} %v; want 10, 20, 20", passed, limited, counted)
	}

	rls.Kill()
	if reply, err := clients[0].Call(ctx, "sayHello", "open"); err != nil || reply != "v1|open" {
		t.Fatalf("service down, fail-open: %q, %v", reply, err)
	}
	if n := testutil.ToFloat64(srvs[0].Metrics().RateLimit.ServiceErrors.WithLabelValues(rlsCluster)); n != 1 {
		t.Errorf("metamesh_rate_limit_service_errors_total = %v, want 1", n)
	}
	if reply, err := denyClient.Call(ctx, "sayHello", "closed"); err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("service down, deny_on_fail: %q, %v; want the rate-limited reply", reply, err)
	}
	if n := testutil.ToFloat64(denySrv.Metrics().RateLimit.Limited.WithLabelValues("dubbo", "global")); n != 1 {
		t.Errorf("deny_on_fail: metamesh_rate_limited_total{kind=global} = %v, want 1", n)
	}
}

// TestGlobalRateLimitThrift: the same limit on Thrift's echo (10 a
// minute), through two proxies in front of apache/thrift clients: of 30
// calls exactly 10 pass, 20 get the rate-limited TApplicationException.
func TestGlobalRateLimitThrift(t *testing.T) {
	red := redispeer.Start(t)
	rls := harness.StartRateLimitServer(t, red.Addr, strings.Replace(rlsConfig, "sayHello", "echo", 1))
	limit := strings.Replace(globalLimit(false), "sayHello", "echo", 1)
	combo := thrift.Combos[0]
	var clients [2]*thrift.Client
	var srvs [2]*proxy.Server
	for i := range clients {
		var listen string
		listen, _, _, srvs[i] = startThriftProxy(t, thriftRoutes{W1: 100, Upstream: "multiplexed", Global: limit, RLS: rls.Addr}, combo)
		clients[i] = thrift.Dial(t, listen, combo)
	}
	ctx := context.Background()
	passed, limited := countLimited(t, func(i int) (string, error) {
		return clients[i%2].Echo(ctx, payload(0, i))
	})
	var counted float64
	for _, s := range srvs {
		counted += testutil.ToFloat64(s.Metrics().RateLimit.Limited.WithLabelValues("thrift", "global"))
	}
	t.Logf("30 echo through two proxies: %d passed, %d rate limited (counted %v)", passed, limited, counted)
	if passed != 10 || limited != 20 || counted != 20 {
		t.Fatalf("passed %d, limited %d, metamesh_rate_limited_total{kind=global} %v; want 10, 20, 20", passed, limited, counted)
	}
}
