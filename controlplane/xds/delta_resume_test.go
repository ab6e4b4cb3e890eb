package xds_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/controlplane/xds"
)

var adsTypes = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType}

// deltaStream opens a delta ADS stream for node, subscribing to every type
// (wildcard) with the given initial resource versions by type.
func deltaStream(t *testing.T, addr, node string, initial map[string]map[string]string) discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(func() { cancel(); conn.Close() })
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range adsTypes {
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, InitialResourceVersions: initial[typ]}
		if i == 0 {
			req.Node = &corev3.Node{Id: node}
		}
		if err := st.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// recvAck receives one delta response and ACKs it.
func recvAck(t *testing.T, st discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) *discoveryv3.DeltaDiscoveryResponse {
	t.Helper()
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	return resp
}

// A reconnecting delta proxy that names what it has
// (initial_resource_versions) gets only what changed meanwhile: the
// resources added or different and the names removed.
func TestDeltaReconnectSendsOnlyWhatChanged(t *testing.T) {
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, nil)
	srv.Update(resourcesFor(3, "v1"))
	waitFor(t, 5*time.Second, "the first push", srv.Ready)

	have := map[string]map[string]string{}
	first := deltaStream(t, addr, "resumer", nil)
	for range adsTypes {
		resp := recvAck(t, first)
		have[resp.GetTypeUrl()] = map[string]string{}
		for _, r := range resp.GetResources() {
			have[resp.GetTypeUrl()][r.GetName()] = r.GetVersion()
		}
	}
	if err := first.CloseSend(); err != nil {
		t.Fatal(err)
	}

	// Service 2 goes, service 0's endpoints move.
	in := services(2, "v1")
	in.ServiceEntries[0].Spec.Endpoints[0].Address = "10.9.9.9"
	before := srv.Versions()
	srv.Update(translate.Translate(in, translate.Options{}).Resources)
	waitFor(t, 5*time.Second, "the change", func() bool { return srv.Versions()["cluster"] != before["cluster"] })

	st := deltaStream(t, addr, "resumer", have)
	clusters := recvAck(t, st)
	if clusters.GetTypeUrl() != resourcev3.ClusterType || len(clusters.GetResources()) != 0 || len(clusters.GetRemovedResources()) != 5 {
		t.Fatalf("first response: %s, %d resources, %d removed; want clusters: none sent, service 2's 5 removed",
			clusters.GetTypeUrl(), len(clusters.GetResources()), len(clusters.GetRemovedResources()))
	}
	for _, name := range clusters.GetRemovedResources() {
		if !strings.Contains(name, "Service0002") {
			t.Errorf("cluster %s removed, want service 2's only", name)
		}
	}
	endpoints := recvAck(t, st)
	if endpoints.GetTypeUrl() != resourcev3.EndpointType || len(endpoints.GetRemovedResources()) != 5 {
		t.Fatalf("second response: %s with %d removed; want endpoints, service 2's 5 removed", endpoints.GetTypeUrl(), len(endpoints.GetRemovedResources()))
	}
	if len(endpoints.GetResources()) == 0 {
		t.Fatal("service 0's changed endpoints were not sent")
	}
	for _, r := range endpoints.GetResources() {
		if !strings.Contains(r.GetName(), "Service0000") {
			t.Errorf("endpoints %s sent, unchanged", r.GetName())
		}
		if r.GetVersion() == have[resourcev3.EndpointType][r.GetName()] {
			t.Errorf("endpoints %s sent at the version the proxy has", r.GetName())
		}
	}
}

// staleOfEveryType is what a reconnecting proxy that has only a resource
// since removed names: its diff is made for its stream alone.
func staleOfEveryType() map[string]map[string]string {
	initial := map[string]map[string]string{}
	for _, typ := range adsTypes {
		initial[typ] = map[string]string{"gone": "0"}
	}
	return initial
}

// With a proxy that never answers, a second proxy's responses made for
// its stream alone (reconnecting proxies' diffs) wait for admission
// (--push-inflight-bytes) until the first answers; then the bytes in
// flight return to none.
func TestAdmissionWaitsForAnswers(t *testing.T) {
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond, InflightBytes: 1}, nil)
	srv.Update(resourcesFor(2, "v1"))
	waitFor(t, 5*time.Second, "the first push", srv.Ready)

	slow := deltaStream(t, addr, "slow", staleOfEveryType())
	var pending []*discoveryv3.DeltaDiscoveryResponse
	for range adsTypes {
		resp, err := slow.Recv()
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, resp)
	}
	if v := metric(t, srv.Registry(), "metamesh_controlplane_xds_inflight_bytes", nil); v != 1 {
		t.Fatalf("inflight_bytes = %v while a proxy has not answered, want 1 (the limit)", v)
	}

	answered := make(chan struct{})
	other := deltaStream(t, addr, "waiting", staleOfEveryType())
	got := make(chan *discoveryv3.DeltaDiscoveryResponse, 1)
	servedEarly := make(chan bool, 1)
	go func() {
		resp, err := other.Recv()
		if err != nil {
			close(got)
			return
		}
		select {
		case <-answered:
			servedEarly <- false
		default:
			servedEarly <- true
		}
		got <- resp
	}()
	// Room for a wrongly admitted response to arrive before the answers.
	time.Sleep(200 * time.Millisecond)
	close(answered)
	for _, resp := range pending {
		if err := slow.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	resp, ok := <-got
	if !ok {
		t.Fatal("the second proxy's stream broke")
	}
	if <-servedEarly {
		t.Fatal("the second proxy was served before the first answered")
	}
	if err := other.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	for range adsTypes[1:] {
		recvAck(t, other)
	}
	waitFor(t, 5*time.Second, "no bytes in flight", func() bool {
		return metric(t, srv.Registry(), "metamesh_controlplane_xds_inflight_bytes", nil) == 0
	})
}

// Responses marshaled once for every stream (a new proxy's whole tables)
// take no admission: with a proxy that never answers, a second new proxy
// is served at once, and no bytes are counted in flight.
func TestAdmissionSkipsSharedResponses(t *testing.T) {
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond, InflightBytes: 1}, nil)
	srv.Update(resourcesFor(2, "v1"))
	waitFor(t, 5*time.Second, "the first push", srv.Ready)

	slow := deltaStream(t, addr, "slow", nil)
	for range adsTypes {
		if _, err := slow.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	other := deltaStream(t, addr, "other", nil)
	for range adsTypes {
		recvAck(t, other)
	}
	if v := metric(t, srv.Registry(), "metamesh_controlplane_xds_inflight_bytes", nil); v != 0 {
		t.Fatalf("inflight_bytes = %v with only shared responses sent, want 0", v)
	}
}
