package proxy

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
)

// BenchmarkProxyRoundTrip measures one Dubbo request through the proxy and
// back over loopback, 16 requests in flight on one client connection: the
// whole data path (decode, route, LB, ID rewrite, encode, both writers),
// without policies and with each policy configured but not triggered.
func BenchmarkProxyRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  setup
	}{
		{"none", setup{}},
		{"timeout+retries", setup{Policy: "timeout: 10s, retry_policy: {retry_on: reset, num_retries: 1}"}},
		{"ratelimit", setup{RateLimit: "token_bucket: {max_tokens: 1000000000, tokens_per_fill: 1000000000, fill_interval: 1s}"}},
		{"fault-0%", setup{Fault: "fault: {abort: {status: 70, percentage: 0}}"}},
		{"outlier+limits", setup{Outlier: "{consecutive_5xx: 5}", Thresholds: "{max_requests: 100000}"}},
		{"accesslog-1%", setup{AccessLog: "{mode: SAMPLED, sample_percent: 1, path: /dev/null}"}},
		{"accesslog-all", setup{AccessLog: "{mode: ALL, path: /dev/null}"}},
		{"authz-allow", setup{Authz: "{policies: [{name: default/allow-hello, rules: [{from: [{ip_blocks: [127.0.0.0/8]}], to: [{methods: [sayHello]}]}]}]}"}},
	} {
		b.Run(bc.name, func(b *testing.B) { benchRoundTrip(b, bc.cfg) })
	}
	// A global rate limit that every request asks about, answered OK by
	// a service in this process: the cost of one ShouldRateLimit call
	// per request.
	b.Run("global-limit-asked", func(b *testing.B) {
		rls := startOKRateLimitService(b)
		benchRoundTrip(b, setup{RLS: []string{rls.addr}, Global: `domain: bench, rate_limit_service: rls, request_timeout: 1s,
      descriptors: [{property: method, descriptor_key: method}]`})
		if rls.calls.Load() < int64(b.N) {
			b.Fatalf("%d rate-limit calls for %d requests", rls.calls.Load(), b.N)
		}
	})
}

func benchRoundTrip(b *testing.B, cfg setup) {
	up := startEcho(b, "v1")
	cfg.V1 = []string{up.addr()}
	_, addr := startProxy(b, cfg)
	c := dial(b, addr)
	const window = 16
	req := func(id uint64) []byte {
		return dubbo.AppendRequest(nil, dubbo.Request{ID: id, TwoWay: true, Service: svc, Method: "sayHello",
			Args: []string{"hello"}, Attachments: []protocols.Header{header("tenant", "a"), header("x-request-id", "r")}})
	}
	for id := range uint64(window) {
		c.send(req(id))
	}
	b.ReportAllocs()
	b.ResetTimer()
	id := uint64(window)
	for b.Loop() {
		if _, _, status, _, err := c.read(); err != nil || status != 20 {
			b.Fatalf("status %d: %v", status, err)
		}
		c.send(req(id))
		id++
	}
	b.StopTimer()
	for range window {
		_, _, _, _, _ = c.read()
	}
}

// BenchmarkProxyManyClients measures a Dubbo request through the proxy
// from 64 client connections (rounded up to a multiple of GOMAXPROCS)
// with one request in flight each, the shape
// of metamesh-bench's 64-connection row: what the clients' read loops
// share (upstream writes, yields) shows here and not with one client.
func BenchmarkProxyManyClients(b *testing.B) {
	up := startEcho(b, "v1")
	_, addr := startProxy(b, setup{V1: []string{up.addr()}})
	// RunParallel starts parallelism × GOMAXPROCS goroutines: one client
	// connection each, 64 or the next multiple of GOMAXPROCS.
	procs := runtime.GOMAXPROCS(0)
	parallelism := (64 + procs - 1) / procs
	conns := parallelism * procs
	clients := make(chan *client, conns)
	for range conns {
		clients <- dial(b, addr)
	}
	var ids atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		c := <-clients
		for pb.Next() {
			id := ids.Add(1)
			frame := dubbo.AppendRequest(nil, dubbo.Request{ID: id, TwoWay: true, Service: svc, Method: "sayHello", Args: []string{"hello"}})
			if _, err := c.nc.Write(frame); err != nil {
				b.Error(err)
				return
			}
			if _, got, status, _, err := c.read(); err != nil || status != 20 || got != id {
				b.Errorf("reply %d status %d to %d: %v", got, status, id, err)
				return
			}
		}
	})
}
