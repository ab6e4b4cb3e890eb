package xds

import (
	"fmt"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
)

// publishClusters publishes the endpoints of n clusters (c0…, listed in reverse name
// order; port tells versions apart) to c and sets them as the snapshot of
// nodes. It returns their version.
func publishClusters(t *testing.T, c *sharedCache, n int, port uint32, nodes ...string) string {
	t.Helper()
	var rs []types.Resource
	for i := n - 1; i >= 0; i-- {
		rs = append(rs, &endpointv3.ClusterLoadAssignment{
			ClusterName: fmt.Sprintf("c%d", i),
			Endpoints:   []*endpointv3.LocalityLbEndpoints{{Priority: port}}, // a version per port
		})
	}
	snap, err := cachev3.NewSnapshot("", map[string][]types.Resource{resourcev3.EndpointType: rs})
	if err != nil {
		t.Fatal(err)
	}
	m, err := marshalSorted(resourcev3.EndpointType, rs)
	if err != nil {
		t.Fatal(err)
	}
	snap.Resources[types.Endpoint].Version = m.version
	c.publish([]marshaledResources{m})
	for _, node := range nodes {
		if err := c.SetSnapshot(t.Context(), node, snap); err != nil {
			t.Fatal(err)
		}
	}
	return m.version
}

// watch opens a watch for node's endpoints (names: nil for all) and
// returns its first response.
func watch(t *testing.T, c *sharedCache, node string, names ...string) cachev3.Response {
	t.Helper()
	out := make(chan cachev3.Response, 1)
	req := &cachev3.Request{Node: nodeOf(node), TypeUrl: resourcev3.EndpointType, ResourceNames: names}
	cancel, err := c.CreateWatch(req, streamv3.NewSotwSubscription(names, true), out)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	select {
	case resp := <-out:
		return resp
	case <-time.After(5 * time.Second):
		t.Fatalf("no response for %s", node)
		return nil
	}
}

func TestSharedCacheStreamsShareMarshaledResources(t *testing.T) {
	c := newSharedCache(cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil))
	version := publishClusters(t, c, 3, 1, "a", "b", "c")

	a, b := watch(t, c, "a"), watch(t, c, "b")
	ra, err := a.GetDiscoveryResponse()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.GetDiscoveryResponse()
	if err != nil {
		t.Fatal(err)
	}
	if ra == rb {
		t.Fatal("two streams got the same DiscoveryResponse; the server sets each one's nonce")
	}
	if ra.GetVersionInfo() != version || ra.GetTypeUrl() != resourcev3.EndpointType || len(ra.GetResources()) != 3 {
		t.Fatalf("response: version %q type %q %d resources; want %q, endpoints, 3", ra.GetVersionInfo(), ra.GetTypeUrl(), len(ra.GetResources()), version)
	}
	for i, res := range ra.GetResources() {
		if res != rb.GetResources()[i] {
			t.Errorf("resource %d marshaled for each stream, not shared", i)
		}
		var got endpointv3.ClusterLoadAssignment
		if err := res.UnmarshalTo(&got); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("c%d", i); got.GetClusterName() != want {
			t.Errorf("resource %d is %s, want %s (name order)", i, got.GetClusterName(), want)
		}
	}

	// A request naming the resources (ADS: all of them, and maybe more)
	// gets the same ones.
	named, err := watch(t, c, "c", "c2", "c0", "c1", "c9").GetDiscoveryResponse()
	if err != nil {
		t.Fatal(err)
	}
	if len(named.GetResources()) != 3 || named.GetResources()[0] != ra.GetResources()[0] {
		t.Errorf("request naming c2 c0 c1 c9 got %v", named.GetResources())
	}
}

func TestSharedCacheKeepsTwoVersions(t *testing.T) {
	c := newSharedCache(cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil))
	v1 := publishClusters(t, c, 2, 1)
	v2 := publishClusters(t, c, 2, 2)
	names := map[string]string{"c0": "", "c1": ""}
	if _, ok := c.resources(resourcev3.EndpointType, v1, names); !ok {
		t.Error("the version before the published one was dropped")
	}
	v3 := publishClusters(t, c, 2, 3)
	if _, ok := c.resources(resourcev3.EndpointType, v1, names); ok {
		t.Error("a version two publishes old is still held")
	}
	for _, v := range []string{v2, v3} {
		if _, ok := c.resources(resourcev3.EndpointType, v, names); !ok {
			t.Errorf("version %s not held", v)
		}
	}

	// A response of a version no longer held is passed on as the
	// SnapshotCache made it (it marshals its own resources).
	raw := &cachev3.RawResponse{Request: &cachev3.Request{TypeUrl: resourcev3.EndpointType}, Version: v1}
	if got := c.share(raw); got != cachev3.Response(raw) {
		t.Errorf("share of an unheld version = %T, want the RawResponse", got)
	}
}

func TestSharedCacheCancelledWatchIsNotAnswered(t *testing.T) {
	c := newSharedCache(cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil))
	out := make(chan cachev3.Response, 1)
	req := &cachev3.Request{Node: nodeOf("late"), TypeUrl: resourcev3.EndpointType}
	cancel, err := c.CreateWatch(req, streamv3.NewSotwSubscription(nil, true), out)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	cancel() // may be called more than once
	publishClusters(t, c, 1, 1, "late")
	select {
	case resp := <-out:
		t.Fatalf("a cancelled watch was answered: %v", resp)
	case <-time.After(100 * time.Millisecond):
	}
}

func nodeOf(id string) *corev3.Node { return &corev3.Node{Id: id} }

// A stream's watches are answered in the SnapshotCache's order (ADS type
// order), every time: the proxy must not get routes to clusters it has
// not been sent yet.
func TestSharedCacheKeepsTypeOrder(t *testing.T) {
	order := []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType}
	for i := range 200 {
		c := newSharedCache(cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil))
		out := make(chan cachev3.Response, 10) // as go-control-plane's ADS stream
		// Opened in reverse, so an order by watch would show.
		for j := len(order) - 1; j >= 0; j-- {
			req := &cachev3.Request{Node: nodeOf("n"), TypeUrl: order[j]}
			if _, err := c.CreateWatch(req, streamv3.NewSotwSubscription(nil, true), out); err != nil {
				t.Fatal(err)
			}
		}
		snap, err := cachev3.NewSnapshot(fmt.Sprint(i), map[string][]types.Resource{
			resourcev3.ClusterType:  {&clusterv3.Cluster{Name: "c"}},
			resourcev3.EndpointType: {&endpointv3.ClusterLoadAssignment{ClusterName: "c"}},
			resourcev3.ListenerType: {&listenerv3.Listener{Name: "l"}},
			resourcev3.RouteType:    {&routev3.RouteConfiguration{Name: "r"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetSnapshot(t.Context(), "n", snap); err != nil {
			t.Fatal(err)
		}
		for j, want := range order {
			select {
			case resp := <-out:
				if got := resp.GetRequest().GetTypeUrl(); got != want {
					t.Fatalf("run %d: answer %d is %s, want %s", i, j, got, want)
				}
			default:
				t.Fatalf("run %d: %d answers, want 4, passed on by the time SetSnapshot returned", i, j)
			}
		}
	}
}
