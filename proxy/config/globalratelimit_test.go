package config_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/config"
)

// TestGlobalRateLimitConfig: a virtual host's GlobalRateLimit is read
// with its service's client, the same client from one config to the next;
// one naming no cluster of the config, or with no descriptor, is refused.
func TestGlobalRateLimitConfig(t *testing.T) {
	with := func(g *xdsapi.GlobalRateLimit) *xdsapi.Resources {
		t.Helper()
		res := load(t)
		a, err := anypb.New(g)
		if err != nil {
			t.Fatal(err)
		}
		res.Routes[0].GetVirtualHosts()[0].TypedPerFilterConfig = map[string]*anypb.Any{xdsapi.GlobalRateLimitName: a}
		return res
	}
	cluster := load(t).Clusters[0].GetName()
	demo := func() *xdsapi.GlobalRateLimit {
		return &xdsapi.GlobalRateLimit{Domain: "production", RateLimitService: cluster,
			Descriptors: []*xdsapi.RateLimitDescriptorEntry{{Property: "method", DescriptorKey: "method"}}}
	}
	b := config.NewBuilder()
	res := with(demo())
	g1 := build(t, b, res).Routes[res.Routes[0].GetName()].Lookup(greetings).Global
	if g1 == nil || g1.Service.Cluster() != cluster || g1.Domain != "production" {
		t.Fatalf("Global = %+v", g1)
	}
	g2 := build(t, b, with(demo())).Routes[res.Routes[0].GetName()].Lookup(greetings).Global
	if g2.Service != g1.Service {
		t.Error("a new config made a new client for the same rate-limit service")
	}
	missing := demo()
	missing.RateLimitService = "outbound|8081||nowhere"
	noDesc := demo()
	noDesc.Descriptors = nil
	for _, c := range []struct {
		g    *xdsapi.GlobalRateLimit
		want string
	}{{missing, `rate_limit_service "outbound|8081||nowhere": no such cluster`}, {noDesc, "descriptors: empty"}} {
		if _, err := b.Build(with(c.g)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Build: %v, want an error with %q", err, c.want)
		}
	}
}
