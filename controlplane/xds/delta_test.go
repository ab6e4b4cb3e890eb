package xds_test

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metamesh/metamesh/controlplane/xds"
)

// The same server answers delta ADS on a raw stream: the first responses
// carry every resource, a route change sends only the changed route
// configuration, and ACKs and NACKs are tracked as for state of the world.
func TestDeltaADS(t *testing.T) {
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, nil)
	srv.Update(resourcesFor(2, "v1"))
	waitFor(t, 5*time.Second, "the first push", srv.Ready)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	types := []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType}
	for i, typ := range types {
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			req.Node = &corev3.Node{Id: "delta-node"}
		}
		if err := st.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{resourcev3.ClusterType: 10, resourcev3.EndpointType: 10, resourcev3.ListenerType: 1, resourcev3.RouteType: 1}
	for range types {
		resp, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.GetResources()); n != want[resp.GetTypeUrl()] {
			t.Errorf("%s: %d resources, want %d", resp.GetTypeUrl(), n, want[resp.GetTypeUrl()])
		}
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the delta node's ACKs", func() bool { return ackedAll(srv, "delta-node") })

	srv.Update(resourcesFor(2, "v2"))
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTypeUrl() != resourcev3.RouteType || len(resp.GetResources()) != 1 || len(resp.GetRemovedResources()) != 0 {
		t.Fatalf("after a route change: %s with %d resources, %d removed; want the one route configuration",
			resp.GetTypeUrl(), len(resp.GetResources()), len(resp.GetRemovedResources()))
	}
	if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce(),
		ErrorDetail: &statuspb.Status{Code: 3, Message: "delta says no"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the delta NACK", func() bool {
		p := proxy(srv, "delta-node")
		return p != nil && p.LastNack != nil
	})
	p := proxy(srv, "delta-node")
	if p.LastNack.Type != "route" || p.LastNack.Version != srv.Versions()["route"] || p.LastNack.Error != "delta says no" {
		t.Fatalf("last NACK %+v", p.LastNack)
	}
	if v := metric(t, srv.Registry(), "metamesh_controlplane_xds_responses_total", map[string]string{"protocol": "delta"}); v != 5 {
		t.Fatalf("%v delta responses counted, want 5", v)
	}
}
