package router_test

import (
	"math"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/router"
)

func headers(kv ...string) *protocols.Headers {
	h := &protocols.Headers{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func regex(t testing.TB, name, pattern string, invert bool) router.Matcher {
	t.Helper()
	m, err := router.NewRegexMatcher(name, pattern, invert)
	if err != nil {
		t.Fatalf("NewRegexMatcher(%q): %v", pattern, err)
	}
	return m
}

func TestMatcher(t *testing.T) {
	m := func(kind router.MatchKind, value string, invert bool) router.Matcher {
		return router.Matcher{Name: "method", Kind: kind, Value: value, Invert: invert}
	}
	tests := []struct {
		name string
		m    router.Matcher
		h    *protocols.Headers
		want bool
	}{
		{"exact hit", m(router.MatchExact, "sayHello", false), headers("method", "sayHello"), true},
		{"exact miss", m(router.MatchExact, "sayHello", false), headers("method", "sayHello2"), false},
		{"exact is case sensitive", m(router.MatchExact, "sayHello", false), headers("method", "SayHello"), false},
		{"exact empty value", m(router.MatchExact, "", false), headers("method", ""), true},
		{"exact absent", m(router.MatchExact, "", false), headers("other", ""), false},
		{"exact inverted hit", m(router.MatchExact, "sayHello", true), headers("method", "sayHello"), false},
		{"exact inverted miss", m(router.MatchExact, "sayHello", true), headers("method", "bye"), true},
		{"exact inverted absent", m(router.MatchExact, "sayHello", true), headers(), true},

		{"prefix hit", m(router.MatchPrefix, "say", false), headers("method", "sayHello"), true},
		{"prefix whole", m(router.MatchPrefix, "say", false), headers("method", "say"), true},
		{"prefix miss", m(router.MatchPrefix, "say", false), headers("method", "hello_say"), false},
		{"prefix absent", m(router.MatchPrefix, "say", false), headers(), false},
		{"prefix inverted", m(router.MatchPrefix, "say", true), headers("method", "sayHello"), false},
		{"prefix inverted absent", m(router.MatchPrefix, "say", true), headers(), true},

		{"suffix hit", m(router.MatchSuffix, "Hello", false), headers("method", "sayHello"), true},
		{"suffix miss", m(router.MatchSuffix, "Hello", false), headers("method", "HelloSay"), false},
		{"suffix absent", m(router.MatchSuffix, "Hello", false), headers(), false},
		{"suffix inverted", m(router.MatchSuffix, "Hello", true), headers("method", "HelloSay"), true},

		{"contains hit", m(router.MatchContains, "yHe", false), headers("method", "sayHello"), true},
		{"contains miss", m(router.MatchContains, "xyz", false), headers("method", "sayHello"), false},
		{"contains absent", m(router.MatchContains, "", false), headers(), false},
		{"contains inverted absent", m(router.MatchContains, "x", true), headers(), true},

		{"present", m(router.MatchPresent, "", false), headers("method", ""), true},
		{"present absent", m(router.MatchPresent, "", false), headers("service", "x"), false},
		{"present inverted (absent wanted)", m(router.MatchPresent, "", true), headers("service", "x"), true},
		{"present inverted, present", m(router.MatchPresent, "", true), headers("method", "x"), false},

		{"regex whole value", regex(t, "method", "say[A-Z][a-z]+", false), headers("method", "sayHello"), true},
		{"regex not a substring search", regex(t, "method", "say", false), headers("method", "sayHello"), false},
		{"regex anchored at start", regex(t, "method", "Hello", false), headers("method", "sayHello"), false},
		{"regex alternation anchored as a group", regex(t, "method", "a|b", false), headers("method", "ab"), false},
		{"regex alternation hit", regex(t, "method", "a|b", false), headers("method", "b"), true},
		{"regex absent", regex(t, "method", ".*", false), headers(), false},
		{"regex inverted", regex(t, "method", "say.*", true), headers("method", "sayHello"), false},
		{"regex inverted miss", regex(t, "method", "say", true), headers("method", "sayHello"), true},
		{"regex inverted absent", regex(t, "method", "say", true), headers(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Match(tt.h); got != tt.want {
				t.Errorf("Match(%v) = %v, want %v", tt.h.All(), got, tt.want)
			}
		})
	}
}

func TestNewRegexMatcherError(t *testing.T) {
	for _, pattern := range []string{
		"say(",
		"a)",
		// Valid once wrapped in ^(?:…)$, where it would match "a…" or
		// "…b" instead of a whole value.
		"a)|(?:b",
	} {
		if m, err := router.NewRegexMatcher("method", pattern, false); err == nil {
			t.Errorf("NewRegexMatcher(%q) succeeded, want a compile error; matches \"axyz\": %v",
				pattern, m.Match(headers("method", "axyz")))
		}
	}
}

func TestRouteMatchesAND(t *testing.T) {
	r := &router.Route{Matchers: []router.Matcher{
		{Name: "method", Kind: router.MatchPrefix, Value: "say"},
		{Name: "version", Kind: router.MatchExact, Value: "v2"},
		{Name: "canary", Kind: router.MatchPresent, Invert: true},
	}}
	tests := []struct {
		name string
		h    *protocols.Headers
		want bool
	}{
		{"all match", headers("method", "sayHi", "version", "v2"), true},
		{"first fails", headers("method", "hi", "version", "v2"), false},
		{"second fails", headers("method", "sayHi", "version", "v1"), false},
		{"second absent", headers("method", "sayHi"), false},
		{"inverted third fails", headers("method", "sayHi", "version", "v2", "canary", "1"), false},
		{"none present", headers(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Matches(tt.h); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
	if empty := (&router.Route{}); !empty.Matches(headers()) {
		t.Error("a route without matchers must match every request")
	}
}

func testTable(t *testing.T) *router.Table {
	t.Helper()
	tbl, err := router.NewTable("rc", []*router.VirtualHost{
		{Name: "greetings", Domains: []string{"svc.Greetings", "svc.Greetings2"}, Routes: []*router.Route{
			{Name: "batch", Matchers: []router.Matcher{{Name: "batchjob", Kind: router.MatchExact, Value: "true"}}, Clusters: []router.WeightedCluster{{Name: "v2"}}},
			{Name: "say", Matchers: []router.Matcher{{Name: "method", Kind: router.MatchPrefix, Value: "say"}}, Clusters: []router.WeightedCluster{{Name: "v1"}}},
			{Name: "sayHello-shadowed", Matchers: []router.Matcher{{Name: "method", Kind: router.MatchExact, Value: "sayHello"}}, Clusters: []router.WeightedCluster{{Name: "v3"}}},
		}},
		{Name: "fallback", Domains: []string{"*"}, Routes: []*router.Route{
			{Name: "all", Clusters: []router.WeightedCluster{{Name: "default"}}},
		}},
	})
	if err != nil {
		t.Fatalf("NewTable: %v", err)
	}
	return tbl
}

func TestTableLookupAndFirstMatch(t *testing.T) {
	tbl := testTable(t)
	tests := []struct {
		name      string
		service   string
		h         *protocols.Headers
		wantHost  string
		wantRoute string // "" = no route
	}{
		{"exact domain, first route wins over later", "svc.Greetings", headers("batchjob", "true", "method", "sayHello"), "greetings", "batch"},
		{"exact domain, earlier prefix shadows exact", "svc.Greetings", headers("method", "sayHello"), "greetings", "say"},
		{"second domain of the host", "svc.Greetings2", headers("method", "sayBye"), "greetings", "say"},
		{"exact domain, no route matches", "svc.Greetings", headers("method", "bye"), "greetings", ""},
		{"unknown service falls back to *", "svc.Other", headers("method", "bye"), "fallback", "all"},
		{"empty service falls back to *", "", headers(), "fallback", "all"},
		{"domain is case sensitive", "svc.greetings", headers("method", "sayHello"), "fallback", "all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tbl.Lookup(tt.service)
			if v == nil {
				t.Fatalf("Lookup(%q) = nil", tt.service)
			}
			if v.Name != tt.wantHost {
				t.Fatalf("Lookup(%q) = %s, want %s", tt.service, v.Name, tt.wantHost)
			}
			r := v.Match(tt.h)
			switch {
			case tt.wantRoute == "" && r != nil:
				t.Errorf("Match = %s, want no route", r.Name)
			case tt.wantRoute != "" && r == nil:
				t.Errorf("Match = nil, want %s", tt.wantRoute)
			case r != nil && r.Name != tt.wantRoute:
				t.Errorf("Match = %s, want %s", r.Name, tt.wantRoute)
			}
		})
	}
	if got := len(tbl.VirtualHosts()); got != 2 {
		t.Errorf("VirtualHosts() has %d domains, want 2 (the exact ones)", got)
	}
}

func TestLookupWithoutWildcard(t *testing.T) {
	tbl, err := router.NewTable("rc", []*router.VirtualHost{
		{Name: "a", Domains: []string{"svc.A"}, Routes: []*router.Route{{Name: "r", Clusters: []router.WeightedCluster{{Name: "c"}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if v := tbl.Lookup("svc.B"); v != nil {
		t.Errorf("Lookup(svc.B) = %s, want nil without a * host", v.Name)
	}
	if v := tbl.Lookup("svc.A"); v == nil || v.Name != "a" {
		t.Errorf("Lookup(svc.A) = %v, want a", v)
	}
}

func TestNewTableErrors(t *testing.T) {
	route := func(cs ...router.WeightedCluster) []*router.Route {
		return []*router.Route{{Name: "r0", Clusters: cs}}
	}
	ok := route(router.WeightedCluster{Name: "c", Weight: 1})
	tests := []struct {
		name   string
		vhosts []*router.VirtualHost
		want   []string // substrings of the error
	}{
		{
			name: "duplicate domain across hosts",
			vhosts: []*router.VirtualHost{
				{Name: "a", Domains: []string{"svc.A"}, Routes: ok},
				{Name: "b", Domains: []string{"svc.B", "svc.A"}, Routes: ok},
			},
			want: []string{"virtual_hosts[1] (b)", "domains", `"svc.A" claimed twice`},
		},
		{
			name: "duplicate domain within a host",
			vhosts: []*router.VirtualHost{
				{Name: "a", Domains: []string{"svc.A", "svc.A"}, Routes: ok},
			},
			want: []string{"virtual_hosts[0] (a)", `"svc.A" claimed twice`},
		},
		{
			name: "two wildcard hosts",
			vhosts: []*router.VirtualHost{
				{Name: "a", Domains: []string{"*"}, Routes: ok},
				{Name: "b", Domains: []string{"*"}, Routes: ok},
			},
			want: []string{"virtual_hosts[1] (b)", `"*" claimed twice`},
		},
		{
			name:   "empty domains",
			vhosts: []*router.VirtualHost{{Name: "a", Routes: ok}},
			want:   []string{"virtual_hosts[0] (a)", "domains: empty"},
		},
		{
			name:   "route without clusters",
			vhosts: []*router.VirtualHost{{Name: "a", Domains: []string{"svc.A"}, Routes: route()}},
			want:   []string{"virtual_hosts[0] (a)", "routes[0] (r0)", "no destination cluster"},
		},
		{
			name: "zero total weight",
			vhosts: []*router.VirtualHost{{Name: "a", Domains: []string{"svc.A"}, Routes: route(
				router.WeightedCluster{Name: "c1"}, router.WeightedCluster{Name: "c2"})}},
			want: []string{"routes[0] (r0)", "total weight 0"},
		},
		{
			name: "total weight overflow",
			vhosts: []*router.VirtualHost{{Name: "a", Domains: []string{"svc.A"}, Routes: route(
				router.WeightedCluster{Name: "c1", Weight: math.MaxUint32}, router.WeightedCluster{Name: "c2", Weight: math.MaxUint32})}},
			want: []string{"routes[0] (r0)", "out of range"},
		},
		{
			name: "empty cluster name",
			vhosts: []*router.VirtualHost{{Name: "a", Domains: []string{"svc.A"}, Routes: route(
				router.WeightedCluster{Name: "", Weight: 1})}},
			want: []string{"routes[0] (r0)", "empty cluster name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := router.NewTable("rc", tt.vhosts)
			if err == nil {
				t.Fatalf("NewTable succeeded (%v), want an error", tbl)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSingleClusterZeroWeight(t *testing.T) {
	r := &router.Route{Name: "r", Clusters: []router.WeightedCluster{{Name: "only"}}}
	if _, err := router.NewTable("rc", []*router.VirtualHost{{Name: "a", Domains: []string{"*"}, Routes: []*router.Route{r}}}); err != nil {
		t.Fatalf("a single cluster without weight must be accepted: %v", err)
	}
	for range 10 {
		if got := r.PickCluster(); got != "only" {
			t.Fatalf("PickCluster = %q, want only", got)
		}
	}
}

func TestPickClusterDistribution(t *testing.T) {
	tests := []struct {
		name     string
		clusters []router.WeightedCluster
	}{
		{"80/20", []router.WeightedCluster{{Name: "v1", Weight: 80}, {Name: "v2", Weight: 20}}},
		{"20/80", []router.WeightedCluster{{Name: "v1", Weight: 20}, {Name: "v2", Weight: 80}}},
		{"50/30/20", []router.WeightedCluster{{Name: "a", Weight: 50}, {Name: "b", Weight: 30}, {Name: "c", Weight: 20}}},
		{"zero weight never picked", []router.WeightedCluster{{Name: "a", Weight: 0}, {Name: "b", Weight: 70}, {Name: "c", Weight: 30}}},
	}
	const n = 100_000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &router.Route{Name: "r", Clusters: tt.clusters}
			if _, err := router.NewTable("rc", []*router.VirtualHost{{Name: "v", Domains: []string{"*"}, Routes: []*router.Route{r}}}); err != nil {
				t.Fatal(err)
			}
			var total float64
			for _, c := range tt.clusters {
				total += float64(c.Weight)
			}
			counts := map[string]int{}
			for range n {
				counts[r.PickCluster()]++
			}
			for _, c := range tt.clusters {
				got := 100 * float64(counts[c.Name]) / n
				want := 100 * float64(c.Weight) / total
				if math.Abs(got-want) > 1 {
					t.Errorf("%s: %.2f%% of picks, want %.0f%% ± 1", c.Name, got, want)
				}
				if c.Weight == 0 && counts[c.Name] != 0 {
					t.Errorf("%s has weight 0 but was picked %d times", c.Name, counts[c.Name])
				}
			}
		})
	}
}
