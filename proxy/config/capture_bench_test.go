package config_test

import (
	"fmt"
	"net/netip"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/config"
)

// BenchmarkCaptureLookup is the original-destination lookup each
// captured connection makes (mesh mode), in a table the size of a
// cluster's: 200 listeners, each with a service address range and 10
// endpoint addresses. An endpoint (exact), an address in a service range
// (the longest prefix of its port) and one passed through (no match).
func BenchmarkCaptureLookup(b *testing.B) {
	var listeners []*listenerv3.Listener
	for i := 0; i < 200; i++ {
		port := uint32(20000 + i%20)
		dests := []*xdsapi.CaptureDestination{dest(fmt.Sprintf("10.96.%d.0/24", i), port, "")}
		for e := 0; e < 10; e++ {
			dests = append(dests, dest(fmt.Sprintf("10.1.%d.%d", i, e), port, ""))
		}
		listeners = append(listeners, captureListener(b, fmt.Sprintf("l%d", i), "dubbo", uint32(30000+i), "", dests...))
	}
	s, err := config.NewBuilder().Build(&xdsapi.Resources{Listeners: listeners})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, dst string }{
		{"endpoint", "10.1.150.7:20010"},
		{"range", "10.96.150.9:20010"},
		{"passthrough", "192.0.2.1:443"},
	} {
		dst := netip.MustParseAddrPort(c.dst)
		want := c.name != "passthrough"
		if (s.Capture.Lookup(dst) != nil) != want {
			b.Fatalf("%s: Lookup(%s) found a listener: %v, want %v", c.name, dst, !want, want)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Capture.Lookup(dst)
			}
		})
	}
}
