package xds_test

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/xdsapi"
	_ "github.com/metamesh/metamesh/protocols/dubbo" // the codec the services speak
	"github.com/metamesh/metamesh/proxy/config"
)

// The scale of BenchmarkPush200Proxies2000Services, changeable to measure
// the curve (go test -bench Push200 -args -xds.proxies 50).
var (
	benchProxies  = flag.Int("xds.proxies", 200, "simulated proxies in BenchmarkPush200Proxies2000Services")
	benchServices = flag.Int("xds.services", 2000, "services in BenchmarkPush200Proxies2000Services")
)

// ackingProxy is a simulated proxy: one ADS stream on its own connection,
// subscribed to every type, ACKing each response as it arrives (without
// decoding the resources, so the memory measured is the control plane's).
func ackingProxy(b *testing.B, ctx context.Context, addr, node string) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		b.Fatal(err)
	}
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i, typ := range []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType} {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			req.Node = &corev3.Node{Id: node}
		}
		if err := st.Send(req); err != nil {
			b.Fatal(err)
		}
	}
	go func() {
		defer conn.Close()
		for {
			resp, err := st.Recv()
			if err != nil {
				return
			}
			ack := &discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}
			if st.Send(ack) != nil {
				return
			}
		}
	}()
}

// allAcked reports whether n proxies have ACKed route version v.
func allAcked(srv *xds.Server, n int, v string) bool {
	ps := srv.Proxies()
	if len(ps) != n {
		return false
	}
	for _, p := range ps {
		if p.Acked["route"] != v {
			return false
		}
	}
	return true
}

// BenchmarkPush200Proxies2000Services is the scale target of issue 4: one
// control plane, 200 proxies, 2,000 services (10,000 clusters and
// endpoint sets, 2,000 virtual hosts of 5 routes). One op is a MetaRouter
// change (every service's canary subset) from Update to all 200 proxies
// having ACKed the new route version, the default 100 ms debounce
// included. The translation of the change is timed apart (translate-ms).
func BenchmarkPush200Proxies2000Services(b *testing.B) {
	proxies, services := *benchProxies, *benchServices
	start := time.Now()
	sets := [3]*xdsapi.Resources{resourcesFor(services, "v1"), resourcesFor(services, "v2"), resourcesFor(services, "v3")}
	translateMs := float64(time.Since(start).Milliseconds()) / 3

	srv, addr := startServer(b, xds.Options{Log: zap.NewNop()}, nil)
	srv.Update(sets[0])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range proxies {
		ackingProxy(b, ctx, addr, fmt.Sprintf("proxy-%03d", i))
	}
	deadline := time.Now().Add(5 * time.Minute)
	for !srv.Ready() || !allAcked(srv, proxies, srv.Versions()["route"]) {
		if time.Now().After(deadline) {
			b.Fatalf("the first sync of %d proxies did not finish in 5 min", proxies)
		}
		time.Sleep(10 * time.Millisecond)
	}

	b.ReportAllocs()
	var total time.Duration
	ops := 0
	for b.Loop() {
		ops++
		old := srv.Versions()["route"]
		t0 := time.Now()
		srv.Update(sets[ops%3])
		for {
			if v := srv.Versions()["route"]; v != old && allAcked(srv, proxies, v) {
				break
			}
			if time.Since(t0) > time.Minute {
				b.Fatal("200 proxies did not ACK a change within a minute")
			}
			time.Sleep(2 * time.Millisecond)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(ops), "ms-to-all-acked")
	b.ReportMetric(translateMs, "translate-ms")
	// Two collections: the first moves gRPC's pooled buffers to sync.Pool's
	// victim cache, the second frees them; what is left is held.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "MiB-live-heap")
}

// BenchmarkProxyBuild2000Services is what each proxy spends applying one
// push of the 2,000 services above: building the snapshot (hosts and
// codecs reused from the previous build, as a running proxy does), when
// every message is new (a file-mode reload), when only the route
// configurations are (a MetaRouter change: the xDS client keeps the
// other types' messages), and when only the endpoint sets are (pods
// coming and going).
func BenchmarkProxyBuild2000Services(b *testing.B) {
	sets := [2]*xdsapi.Resources{resourcesFor(*benchServices, "v1"), resourcesFor(*benchServices, "v2")}
	newEndpoints := func() []*endpointv3.ClusterLoadAssignment {
		out := make([]*endpointv3.ClusterLoadAssignment, len(sets[0].Endpoints))
		for i, e := range sets[0].Endpoints {
			out[i] = proto.Clone(e).(*endpointv3.ClusterLoadAssignment)
		}
		return out
	}
	endpoints := [2][]*endpointv3.ClusterLoadAssignment{newEndpoints(), newEndpoints()}
	for _, bc := range []struct {
		name string
		push func(i int) *xdsapi.Resources
	}{
		{"all-new", func(i int) *xdsapi.Resources { return sets[i%2] }},
		{"routes-changed", func(i int) *xdsapi.Resources {
			res := *sets[0]
			res.Routes = sets[i%2].Routes
			return &res
		}},
		{"endpoints-changed", func(i int) *xdsapi.Resources {
			res := *sets[0]
			res.Endpoints = endpoints[i%2]
			return &res
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			builder := config.NewBuilder()
			if _, err := builder.Build(bc.push(1)); err != nil {
				b.Fatal(err)
			}
			builder.Commit()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if _, err := builder.Build(bc.push(i)); err != nil {
					b.Fatal(err)
				}
				builder.Commit()
			}
		})
	}
}
