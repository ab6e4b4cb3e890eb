package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	_ "github.com/metamesh/metamesh/protocols/dubbo" // registers "dubbo"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/router"
)

const (
	greetings = "org.apache.dubbo.samples.api.GreetingsService"
	users     = "org.apache.dubbo.samples.api.UserService"
)

func load(t *testing.T) *xdsapi.Resources {
	t.Helper()
	res, err := xdsapi.LoadFile(filepath.Join("testdata", "bootstrap.yaml"))
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	return res
}

func build(t *testing.T, b *config.Builder, res *xdsapi.Resources) *config.Config {
	t.Helper()
	s, err := b.Build(res)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	b.Commit()
	return s
}

// describe renders matchers comparably (the compiled regexp is private).
func describe(ms []router.Matcher) []string {
	kinds := map[router.MatchKind]string{
		router.MatchExact: "exact", router.MatchPrefix: "prefix", router.MatchSuffix: "suffix",
		router.MatchContains: "contains", router.MatchRegex: "regex", router.MatchPresent: "present",
	}
	out := []string{}
	for _, m := range ms {
		s := fmt.Sprintf("%s %s %q", m.Name, kinds[m.Kind], m.Value)
		if m.Invert {
			s = "!" + s
		}
		out = append(out, s)
	}
	return out
}

func TestParseBootstrap(t *testing.T) {
	res := load(t)
	if got := []int{len(res.Listeners), len(res.Routes), len(res.Clusters), len(res.Endpoints)}; !reflect.DeepEqual(got, []int{1, 1, 5, 2}) {
		t.Fatalf("listeners, routes, clusters, endpoints = %v, want [1 1 5 2]", got)
	}
}

func TestBuildBootstrap(t *testing.T) {
	s := build(t, config.NewBuilder(), load(t))

	t.Run("listener", func(t *testing.T) {
		l := s.Listeners["dubbo_20880"]
		if l == nil {
			t.Fatalf("listener dubbo_20880 missing; have %v", s.Listeners)
		}
		want := config.Listener{Name: "dubbo_20880", Address: "0.0.0.0:20880", CodecName: "dubbo",
			RouteConfig: "dubbo_routes", StatPrefix: "dubbo", DefaultService: greetings, Bind: true}
		got := *l
		got.Codec, got.Triple = nil, nil // listener_triple_test.go
		if got != want {
			t.Errorf("listener = %+v, want %+v", got, want)
		}
		if l.Codec == nil {
			t.Fatal("listener has no codec instance")
		}
		if m := l.Codec.Model(); m != protocols.Multiplexed {
			t.Errorf("codec model %s, want multiplexed (dubbo)", m)
		}
	})

	t.Run("routes", func(t *testing.T) {
		tbl := s.Routes["dubbo_routes"]
		if tbl == nil || tbl.Name != "dubbo_routes" {
			t.Fatalf("route table dubbo_routes missing: %v", s.Routes)
		}
		type route struct {
			name     string
			matchers []string
			clusters []router.WeightedCluster
			hashKey  string
			reqSet   []protocols.Header
			respSet  []protocols.Header
		}
		want := map[string][]route{
			greetings: {
				{name: "batchjob", matchers: []string{`batchjob exact "true"`, `method present ""`},
					clusters: []router.WeightedCluster{{Name: "greetings-v2", Weight: 1}}},
				{name: "canary", matchers: []string{`method prefix "say"`, `version regex "1\\.[0-9]+"`, `!debug present ""`, `!group suffix "-test"`},
					clusters: []router.WeightedCluster{{Name: "greetings-v1", Weight: 80}, {Name: "greetings-v2", Weight: 20}},
					reqSet:   []protocols.Header{{Key: "x-routed-by", Value: "metamesh"}},
					respSet:  []protocols.Header{{Key: "x-served-by", Value: "canary"}}},
				{name: "sticky", matchers: []string{`user-id contains "-"`},
					clusters: []router.WeightedCluster{{Name: "greetings-ring", Weight: 1}}, hashKey: "user-id"},
				{name: "default", matchers: []string{}, clusters: []router.WeightedCluster{{Name: "greetings-v1", Weight: 1}}},
			},
			users:   {{name: "default", matchers: []string{}, clusters: []router.WeightedCluster{{Name: "users", Weight: 1}}}},
			"users": {{name: "default", matchers: []string{}, clusters: []router.WeightedCluster{{Name: "users", Weight: 1}}}},
			"unknown.Service": {{name: "orders", matchers: []string{`method exact "listOrders"`},
				clusters: []router.WeightedCluster{{Name: "orders", Weight: 1}}}},
		}
		for svc, routes := range want {
			v := tbl.Lookup(svc)
			if v == nil {
				t.Errorf("Lookup(%s) = nil", svc)
				continue
			}
			if len(v.Routes) != len(routes) {
				t.Errorf("%s: %d routes, want %d", svc, len(v.Routes), len(routes))
				continue
			}
			for i, w := range routes {
				r := v.Routes[i]
				got := route{r.Name, describe(r.Matchers), r.Clusters, r.HashKey, r.RequestSet, r.ResponseSet}
				if !reflect.DeepEqual(got, w) {
					t.Errorf("%s routes[%d]:\n got %+v\nwant %+v", svc, i, got, w)
				}
			}
		}
	})

	t.Run("matching", func(t *testing.T) {
		v := s.Routes["dubbo_routes"].Lookup(greetings)
		tests := []struct {
			kv   []string
			want string
		}{
			{[]string{"batchjob", "true", "method", "x"}, "batchjob"},
			{[]string{"batchjob", "true"}, "default"}, // method must be present
			{[]string{"method", "sayHello", "version", "1.2"}, "canary"},
			{[]string{"method", "sayHello", "version", "1.2.3"}, "default"}, // regex is whole-value
			{[]string{"method", "sayHello", "version", "1.2", "debug", ""}, "default"},
			{[]string{"method", "sayHello", "version", "1.2", "group", "a-test"}, "default"},
			{[]string{"method", "sayHello", "version", "1.2", "group", "prod"}, "canary"},
			{[]string{"user-id", "u-1"}, "sticky"},
			{[]string{"method", "bye"}, "default"},
		}
		for _, tt := range tests {
			var h protocols.Headers
			for i := 0; i < len(tt.kv); i += 2 {
				h.Set(tt.kv[i], tt.kv[i+1])
			}
			r := v.Match(&h)
			if r == nil || r.Name != tt.want {
				t.Errorf("%v matched %v, want %s", tt.kv, r, tt.want)
			}
		}
	})

	t.Run("clusters", func(t *testing.T) {
		type ep struct {
			Addr   string
			Weight uint32
		}
		tests := []struct {
			name     string
			policy   string
			timeout  time.Duration
			maxConns int
			eps      []ep
		}{
			// Unhealthy and draining endpoints are left out.
			{"greetings-v1", "ROUND_ROBIN", 500 * time.Millisecond, 4, []ep{{"127.0.0.1:20881", 1}, {"127.0.0.1:20882", 2}}},
			// EDS by service_name; degraded endpoints still serve; an
			// unset weight is 1, as in Envoy.
			{"greetings-v2", "LEAST_REQUEST", time.Second, 0, []ep{{"127.0.0.1:20885", 1}}},
			{"greetings-ring", "RING_HASH", 2 * time.Second, 0, []ep{{"127.0.0.1:20881", 1}, {"127.0.0.1:20886", 1}}},
			// Timed-out endpoints are left out; localities are flattened.
			{"users", "RANDOM", time.Second, 0, []ep{{"10.0.0.1:20880", 3}, {"[::1]:20880", 1}}},
			// EDS whose assignment has not arrived: no endpoints yet.
			{"orders", "ROUND_ROBIN", time.Second, 0, nil},
		}
		if len(s.Clusters) != len(tests) {
			t.Errorf("%d clusters, want %d", len(s.Clusters), len(tests))
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := s.Clusters[tt.name]
				if c == nil {
					t.Fatal("missing")
				}
				if c.Name != tt.name || c.Policy != tt.policy || c.ConnectTimeout != tt.timeout || c.MaxConnections != tt.maxConns {
					t.Errorf("got name %s policy %s timeout %v max_connections %d, want %s %s %v %d",
						c.Name, c.Policy, c.ConnectTimeout, c.MaxConnections, tt.name, tt.policy, tt.timeout, tt.maxConns)
				}
				var got []ep
				hosts := map[*cluster.Host]bool{}
				for _, e := range c.Endpoints {
					got = append(got, ep{e.Host.Addr, e.Weight})
					hosts[e.Host] = true
				}
				if !reflect.DeepEqual(got, tt.eps) {
					t.Errorf("endpoints %v, want %v", got, tt.eps)
				}
				if c.LB == nil {
					t.Fatal("no picker")
				}
				h := c.LB.Pick("key", true)
				if len(tt.eps) == 0 {
					if h != nil {
						t.Errorf("Pick = %v with no endpoints, want nil", h)
					}
				} else if !hosts[h] {
					t.Errorf("Pick = %v, not one of the cluster's hosts", h)
				}
			})
		}
		// One address in two clusters is one Host (live counters are shared).
		if a, b := s.Clusters["greetings-v1"].Endpoints[0].Host, s.Clusters["greetings-ring"].Endpoints[0].Host; a != b {
			t.Error("127.0.0.1:20881 has two Host values in one snapshot")
		}
	})
}

func TestBuildReusesHostsAndCodecs(t *testing.T) {
	b := config.NewBuilder()
	s1 := build(t, b, load(t))
	// A failed build in between must not disturb what is reused.
	// This one drops greetings-v1 (the only cluster with 20882), then
	// fails on its listener.
	bad := load(t)
	bad.Clusters = bad.Clusters[1:]
	bad.Listeners[0].GetFilterChains()[0].GetFilters()[0].Name = "wrong"
	if _, err := b.Build(bad); err == nil {
		t.Fatal("Build of a bad config succeeded")
	}
	s2 := build(t, b, load(t)) // re-parsed: equal input, new proto values

	if s1 == s2 {
		t.Fatal("Build returned the same snapshot twice")
	}
	if c1, c2 := s1.Listeners["dubbo_20880"].Codec, s2.Listeners["dubbo_20880"].Codec; c1 != c2 {
		t.Errorf("codec not reused: %p then %p", c1, c2)
	}
	for name, c1 := range s1.Clusters {
		c2 := s2.Clusters[name]
		for i := range c1.Endpoints {
			if c1.Endpoints[i].Host != c2.Endpoints[i].Host {
				t.Errorf("%s: host %s not reused", name, c1.Endpoints[i].Host.Addr)
			}
		}
	}

	// A host the next snapshot drops is forgotten: when it comes back it
	// is a new Host. A changed codec config builds a new codec.
	without := load(t)
	without.Clusters = without.Clusters[1:] // drop greetings-v1 (20882 only there)
	without.Endpoints = without.Endpoints[1:]
	editProxy(t, without, func(p *xdsapi.MetaProtocolProxy) {
		p.CodecConfig = mustStruct(t, map[string]any{"maxFrameBytes": 2048})
	})
	s3 := build(t, b, without)
	if s3.Listeners["dubbo_20880"].Codec == s1.Listeners["dubbo_20880"].Codec {
		t.Error("a changed codec_config reused the old codec")
	}
	s4 := build(t, b, load(t))
	old, again := s1.Clusters["greetings-v1"].Endpoints, s4.Clusters["greetings-v1"].Endpoints
	if old[0].Host != again[0].Host {
		t.Error("127.0.0.1:20881 (kept by greetings-ring in between) was not reused")
	}
	if old[1].Host == again[1].Host {
		t.Error("127.0.0.1:20882 was dropped by the previous snapshot but its Host was reused")
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"not yaml", "resources: [", []string{"yaml"}},
		{"unknown top-level key", "resources: []\nextra: 1\n", []string{"bootstrap", "extra"}},
		{"unknown type", "resources:\n- {\"@type\": type.googleapis.com/nope.Nope}\n", []string{"resources[0]", "nope.Nope"}},
		{"type a proxy does not take", "resources:\n- {\"@type\": type.googleapis.com/envoy.config.core.v3.Address}\n",
			[]string{"resources[0]", "envoy.config.core.v3.Address", "not one a proxy accepts"}},
		{"unknown field", "resources:\n- {\"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster, name: a, colour: red}\n",
			[]string{"resources[0]", "colour"}},
		{"second resource", "resources:\n- {\"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster, name: a}\n- {name: b}\n",
			[]string{"resources[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := xdsapi.Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", res)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	t.Run("LoadFile names the file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(path, []byte("extra: 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := xdsapi.LoadFile(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("LoadFile error %v does not name %s", err, path)
		}
		if _, err := xdsapi.LoadFile(filepath.Join(t.TempDir(), "missing.yaml")); !os.IsNotExist(err) {
			t.Errorf("LoadFile(missing) = %v, want a not-exist error", err)
		}
	})
	t.Run("JSON", func(t *testing.T) {
		res, err := xdsapi.Parse([]byte(`{"resources": [{"@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "a"}]}`))
		if err != nil || len(res.Clusters) != 1 || res.Clusters[0].GetName() != "a" {
			t.Errorf("Parse(JSON) = %+v, %v", res, err)
		}
	})
}
