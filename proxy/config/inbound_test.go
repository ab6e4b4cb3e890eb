package config_test

import (
	"net/netip"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/config"
)

// withCapture gives res's listener dubbo_20880 capture destinations.
func withCapture(t *testing.T, res *xdsapi.Resources, dests ...*xdsapi.CaptureDestination) {
	t.Helper()
	f := res.Listeners[0].GetFilterChains()[0].GetFilters()[0]
	var cfg xdsapi.MetaProtocolProxy
	if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.CaptureDestinations = dests
	a, err := anypb.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.GetTypedConfig().Value = a.Value
}

func TestInboundListeners(t *testing.T) {
	res := load(t)
	withCapture(t, res,
		dest("198.18.0.5", 20880, ""),          // the pod's own address, the service port
		dest("198.18.0.6", 30880, ""),          // another endpoint, on a port of its own
		dest("198.18.0.7", 20880, "c.example"), // a destination with its own default service
		dest("10.96.0.0/16", 20880, ""),        // a range (service addresses): not inbound
	)
	b := config.NewBuilder()
	if s := build(t, b, res); s.Inbound(netip.MustParseAddrPort("198.18.0.5:20880")) != nil {
		t.Fatal("built without Builder.Inbound, a destination has an inbound listener")
	}
	b.Inbound = true
	s := build(t, b, res)
	svc := s.Listeners["dubbo_20880"]
	for _, c := range []struct {
		dst, name, cluster, dflt string
	}{
		{"198.18.0.5:20880", "inbound|20880|dubbo_20880", "inbound|20880||", ""},
		{"[::ffff:198.18.0.5]:20880", "inbound|20880|dubbo_20880", "inbound|20880||", ""},
		{"198.18.0.6:30880", "inbound|30880|dubbo_20880", "inbound|30880||", ""},
		{"198.18.0.7:20880", "inbound|20880|dubbo_20880", "inbound|20880||", "c.example"},
		{"10.96.0.1:20880", "", "", ""},
		{"198.18.0.5:30880", "", "", ""},
	} {
		in := s.Inbound(netip.MustParseAddrPort(c.dst))
		if c.name == "" {
			if in != nil {
				t.Errorf("%s: inbound listener %s, want none (forwarded as bytes)", c.dst, in.Name)
			}
			continue
		}
		if in == nil {
			t.Errorf("%s: no inbound listener, want %s", c.dst, c.name)
			continue
		}
		if c.dflt == "" {
			c.dflt = svc.DefaultService
		}
		if in.Name != c.name || in.StatPrefix != c.name || in.RouteConfig != c.name || in.DefaultService != c.dflt || in.Codec != svc.Codec {
			t.Errorf("%s: inbound listener %+v, want %s with the service listener's codec and default service %q", c.dst, in, c.name, c.dflt)
		}
		table := s.Routes[in.RouteConfig]
		if table == nil {
			t.Errorf("%s: no route table %s", c.dst, in.RouteConfig)
			continue
		}
		// The service listener's virtual hosts (its "*" one included)
		// route to the application, keeping their service (labels,
		// authorization).
		if vh, want := table.Lookup(users), s.Routes[svc.RouteConfig].Lookup(users); vh == nil || vh.Service != want.Service || vh.Name != want.Name {
			t.Errorf("%s: virtual host of %s: %+v, want one like %+v", c.dst, users, vh, want)
		}
		for _, service := range []string{greetings, users, "unknown"} {
			vh := table.Lookup(service)
			if vh == nil || len(vh.Routes) != 1 || vh.Routes[0].Name != config.InboundRoute || vh.Routes[0].PickCluster() != c.cluster {
				t.Errorf("%s: service %s: virtual host %+v, want one route %s to %s", c.dst, service, vh, config.InboundRoute, c.cluster)
			}
		}
		if !table.Has(greetings) || table.Has("unknown") {
			t.Errorf("%s: the table's services: %v", c.dst, table.VirtualHosts())
		}
		cl := s.Clusters[c.cluster]
		port := c.cluster[len("inbound|") : len(c.cluster)-2]
		if cl == nil || len(cl.Endpoints) != 1 || cl.Endpoints[0].Host.Addr != "127.0.0.1:"+port {
			t.Errorf("%s: cluster %s: %+v, want the one endpoint 127.0.0.1:%s", c.dst, c.cluster, cl, port)
		}
	}
	// The application's host (its counters, its pool) outlives the build.
	h := s.Clusters["inbound|20880||"].Endpoints[0].Host
	if again := build(t, b, res); again.Clusters["inbound|20880||"].Endpoints[0].Host != h {
		t.Error("the next build made another host for the application")
	}
}

func TestInboundNamesAreReserved(t *testing.T) {
	res := load(t)
	withCapture(t, res, dest("198.18.0.5", 20880, ""))
	taken := proto.Clone(res.Clusters[0]).(*clusterv3.Cluster)
	taken.Name = "inbound|20880||"
	res.Clusters = append(res.Clusters, taken)
	if _, err := config.NewBuilder().Build(res); err != nil {
		t.Fatalf("without Builder.Inbound, a cluster named inbound|20880||: %v", err)
	}
	b := config.NewBuilder()
	b.Inbound = true
	_, err := b.Build(res)
	if err == nil || !strings.Contains(err.Error(), "cluster inbound|20880||: name: reserved for inbound capture") {
		t.Fatalf("error %v, want the reserved cluster name", err)
	}
}
