package proxy

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
)

// BenchmarkProxyRoundTrip measures one Dubbo request through the proxy and
// back over loopback, 16 requests in flight on one client connection: the
// whole data path (decode, route, LB, ID rewrite, encode, both writers).
func BenchmarkProxyRoundTrip(b *testing.B) {
	up := startEcho(b, "v1")
	_, addr := startProxy(b, config{V1: []string{up.addr()}})
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
