package config_test

import (
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/config"
)

// hostOf returns the Host of addr among c's endpoints, or nil.
func hostOf(c *cluster.Cluster, addr string) *cluster.Host {
	for _, ep := range c.Endpoints {
		if ep.Host.Addr == addr {
			return ep.Host
		}
	}
	return nil
}

// TestBuilderReusesUnchangedMessages: a set holding the same messages as
// the snapshot in force gets the same built clusters and route tables; a
// set whose endpoint sets are new messages (equal or not) gets those
// clusters rebuilt, still on the same Hosts, and keeps the rest; the
// rate-limit buckets of a reused route table carry on to a rebuilt one.
func TestBuilderReusesUnchangedMessages(t *testing.T) {
	res := load(t)
	rl, err := anypb.New(&xdsapi.LocalRateLimit{TokenBucket: &xdsapi.TokenBucket{MaxTokens: 1, FillInterval: durationpb.New(time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	res.Routes[0].GetVirtualHosts()[0].TypedPerFilterConfig = map[string]*anypb.Any{xdsapi.FilterName: rl}
	rc := res.Routes[0].GetName()
	b := config.NewBuilder()
	first := build(t, b, res)
	var h protocols.Headers
	if !first.Routes[rc].Lookup(greetings).RateLimit.Allow(&h) {
		t.Fatal("a fresh bucket of 1 refused the first request")
	}

	same := build(t, b, res)
	for _, name := range []string{"greetings-v1", "greetings-ring", "users"} {
		if same.Clusters[name] != first.Clusters[name] {
			t.Errorf("cluster %s built again from the same messages", name)
		}
	}
	if same.Routes[rc] != first.Routes[rc] {
		t.Error("route table built again from the same message")
	}

	// New endpoint messages, equal content: their EDS clusters are built
	// again (identity is all the builder checks), on the same Hosts; the
	// STATIC cluster and the route table are kept.
	moved := *res
	moved.Endpoints = nil
	for _, e := range res.Endpoints {
		moved.Endpoints = append(moved.Endpoints, proto.Clone(e).(*endpointv3.ClusterLoadAssignment))
	}
	// And a new route configuration message: its buckets are those the
	// reused table held.
	moved.Routes = []*routev3.RouteConfiguration{proto.Clone(res.Routes[0]).(*routev3.RouteConfiguration)}
	next := build(t, b, &moved)
	if next.Clusters["greetings-v1"] == same.Clusters["greetings-v1"] {
		t.Error("an EDS cluster whose endpoint set is a new message was not built again")
	}
	if next.Clusters["greetings-ring"] != same.Clusters["greetings-ring"] {
		t.Error("a STATIC cluster of the same message was built again")
	}
	const addr = "127.0.0.1:20881"
	if got, want := hostOf(next.Clusters["greetings-v1"], addr), hostOf(first.Clusters["greetings-v1"], addr); got == nil || got != want {
		t.Errorf("host %s after a reuse and a rebuild: %p, want the first build's %p (its connections and ejection state)", addr, got, want)
	}
	if next.Routes[rc] == same.Routes[rc] {
		t.Fatal("a new route configuration message was not built again")
	}
	if next.Routes[rc].Lookup(greetings).RateLimit.Allow(&h) {
		t.Error("the rate-limit bucket was refilled after a build that reused its route table")
	}
}
