package router_test

import (
	"fmt"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/router"
)

// benchTable builds 20 virtual hosts of 5 routes, each route with two
// matchers (a method prefix and a version exact match).
func benchTable(b *testing.B) *router.Table {
	b.Helper()
	vhosts := make([]*router.VirtualHost, 0, 20)
	for i := range 20 {
		v := &router.VirtualHost{Name: fmt.Sprintf("vh%d", i), Domains: []string{fmt.Sprintf("org.example.Service%d", i)}}
		for j := range 5 {
			v.Routes = append(v.Routes, &router.Route{
				Name: fmt.Sprintf("r%d", j),
				Matchers: []router.Matcher{
					{Name: "method", Kind: router.MatchPrefix, Value: fmt.Sprintf("call%d", j)},
					{Name: "version", Kind: router.MatchExact, Value: "v1"},
				},
				Clusters: []router.WeightedCluster{{Name: fmt.Sprintf("c%d-%d", i, j), Weight: 1}},
			})
		}
		vhosts = append(vhosts, v)
	}
	t, err := router.NewTable("bench", vhosts)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func BenchmarkRouteMatch(b *testing.B) {
	t := benchTable(b)
	var h protocols.Headers
	h.Set("service", "org.example.Service13")
	h.Set("method", "call4Something") // the last route of the host
	h.Set("version", "v1")
	h.Set("group", "default")
	b.ReportAllocs()
	for b.Loop() {
		svc, _ := h.Get(router.ServiceKey)
		v := t.Lookup(svc)
		if v == nil || v.Match(&h) == nil {
			b.Fatal("no route")
		}
	}
}

func BenchmarkPickCluster(b *testing.B) {
	r := &router.Route{Name: "canary", Clusters: []router.WeightedCluster{{Name: "v1", Weight: 80}, {Name: "v2", Weight: 20}}}
	if _, err := router.NewTable("bench", []*router.VirtualHost{{Name: "v", Domains: []string{"*"}, Routes: []*router.Route{r}}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r.PickCluster() == "" {
			b.Fatal("empty pick")
		}
	}
}
