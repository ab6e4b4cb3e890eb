package config_test

import (
	"net/netip"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	_ "github.com/metamesh/metamesh/protocols/thrift" // registers "thrift"
	"github.com/metamesh/metamesh/proxy/config"
)

// captureListener is a listener on port with the capture destinations
// dests ("prefix port [service]").
func captureListener(t testing.TB, name, codec string, port uint32, defaultService string, dests ...*xdsapi.CaptureDestination) *listenerv3.Listener {
	t.Helper()
	cfg, err := anypb.New(&xdsapi.MetaProtocolProxy{Codec: codec, RouteConfigName: name, DefaultService: defaultService, CaptureDestinations: dests})
	if err != nil {
		t.Fatal(err)
	}
	return &listenerv3.Listener{
		Name: name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: xdsapi.FilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: cfg}}}}},
	}
}

func dest(prefix string, port uint32, service string) *xdsapi.CaptureDestination {
	return &xdsapi.CaptureDestination{Prefix: prefix, Port: port, Service: service}
}

func TestCaptureTable(t *testing.T) {
	res := &xdsapi.Resources{Listeners: []*listenerv3.Listener{
		// Two Thrift services on port 9090 at different addresses, each
		// on a listener of its own.
		captureListener(t, "thrift-a", "thrift", 19090, "a.example", dest("10.0.0.1", 9090, ""), dest("198.18.0.10", 9090, "")),
		captureListener(t, "thrift-b", "thrift", 19091, "b.example", dest("10.0.0.2", 9090, ""), dest("198.18.0.0/24", 9090, "")),
		// One listener, two services told apart by address: the copy
		// for c.example has its default service.
		captureListener(t, "thrift-shared", "thrift", 19092, "d.example", dest("10.0.1.1", 9191, "c.example"), dest("10.0.1.2", 9191, "")),
		// An endpoint port that differs from the service port, and IPv6.
		captureListener(t, "dubbo", "dubbo", 20880, "", dest("10.0.2.0/24", 20880, ""), dest("198.18.0.20", 30880, ""), dest("2001:2::/64", 20880, "")),
	}}
	s := build(t, config.NewBuilder(), res)
	if s.Capture.Len() != 9 {
		t.Fatalf("table has %d entries, want 9", s.Capture.Len())
	}
	for _, c := range []struct {
		dst            string
		listener, dflt string // "" listener: passthrough
	}{
		{"10.0.0.1:9090", "thrift-a", "a.example"},
		{"10.0.0.2:9090", "thrift-b", "b.example"},
		{"198.18.0.10:9090", "thrift-a", "a.example"}, // the /32 beats b's /24
		{"198.18.0.11:9090", "thrift-b", "b.example"}, // in b's /24
		{"10.0.0.1:9091", "", ""},                     // right address, wrong port
		{"10.0.0.3:9090", "", ""},                     // unknown address
		{"10.0.1.1:9191", "thrift-shared", "c.example"},
		{"10.0.1.2:9191", "thrift-shared", "d.example"},
		{"10.0.2.77:20880", "dubbo", ""},
		{"198.18.0.20:30880", "dubbo", ""},
		{"198.18.0.20:20880", "", ""},
		{"[2001:2::5]:20880", "dubbo", ""},
		{"[::ffff:10.0.0.1]:9090", "thrift-a", "a.example"}, // v4-mapped, as a dual-stack socket reports it
	} {
		t.Run(c.dst, func(t *testing.T) {
			l := s.Capture.Lookup(netip.MustParseAddrPort(c.dst))
			switch {
			case c.listener == "" && l != nil:
				t.Fatalf("Lookup = %s, want passthrough", l.Name)
			case c.listener == "":
			case l == nil:
				t.Fatalf("Lookup = passthrough, want %s", c.listener)
			case l.Name != c.listener || l.DefaultService != c.dflt:
				t.Fatalf("Lookup = %s (default service %q), want %s (%q)", l.Name, l.DefaultService, c.listener, c.dflt)
			}
		})
	}
	// The copy made for a destination's service is the listener otherwise.
	c, d := s.Capture.Lookup(netip.MustParseAddrPort("10.0.1.1:9191")), s.Listeners["thrift-shared"]
	if c.Codec != d.Codec || c.RouteConfig != d.RouteConfig || c.StatPrefix != d.StatPrefix {
		t.Fatalf("the c.example copy differs from its listener: %+v vs %+v", c, d)
	}
	if got := s.Capture.Lookup(netip.MustParseAddrPort("10.0.1.2:9191")); got != d {
		t.Fatal("a destination without a service of its own does not get the listener itself")
	}
}

func TestCaptureTableSameDestinationTwice(t *testing.T) {
	// Whatever the order of the resources, the listener whose name sorts
	// first serves a destination both claim.
	for _, order := range [][]string{{"a", "b"}, {"b", "a"}} {
		res := &xdsapi.Resources{}
		for i, n := range order {
			res.Listeners = append(res.Listeners, captureListener(t, n, "dubbo", uint32(20000+i), "", dest("10.0.0.1", 20880, "")))
		}
		s := build(t, config.NewBuilder(), res)
		if l := s.Capture.Lookup(netip.MustParseAddrPort("10.0.0.1:20880")); l == nil || l.Name != "a" {
			t.Fatalf("order %v: Lookup = %v, want listener a", order, l)
		}
	}
}

func TestCaptureDestinationErrors(t *testing.T) {
	for _, c := range []struct {
		dest *xdsapi.CaptureDestination
		want string
	}{
		{dest("10.0.0.300", 1, ""), "capture_destinations[0].prefix"},
		{dest("10.0.0.0/33", 1, ""), "capture_destinations[0].prefix"},
		{dest("::ffff:10.0.0.0/104", 1, ""), "IPv4-mapped"},
		{dest("10.0.0.1", 0, ""), "capture_destinations[0].port: 0"},
		{dest("10.0.0.1", 70000, ""), "capture_destinations[0].port: 70000"},
	} {
		res := &xdsapi.Resources{Listeners: []*listenerv3.Listener{captureListener(t, "l", "dubbo", 20880, "", c.dest)}}
		_, err := config.NewBuilder().Build(res)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.dest, err, c.want)
		}
	}
}
