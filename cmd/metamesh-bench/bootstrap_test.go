package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/config"
)

func TestBootstrapBuilds(t *testing.T) {
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) {
			cfg := bootstrapConfig{
				Listen: "127.0.0.1:20001", Codec: w.codec, Service: w.service,
				DefaultService: w.defaultService, Upstream: "127.0.0.1:20002",
			}
			path, err := cfg.write(t.TempDir(), "bootstrap.yaml")
			if err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if filepath.Base(path) != "bootstrap.yaml" {
				t.Errorf("path %s", path)
			}
			res, err := xdsapi.Parse(data)
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, data)
			}
			if len(res.Listeners) != 1 || len(res.Routes) != 1 || len(res.Clusters) != 1 {
				t.Fatalf("resources: %d listeners, %d routes, %d clusters", len(res.Listeners), len(res.Routes), len(res.Clusters))
			}
			snap, err := config.NewBuilder().Build(res)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, data)
			}
			l := snap.Listeners[w.codec]
			if l == nil || l.Address != cfg.Listen || l.CodecName != w.codec || l.Codec == nil ||
				l.RouteConfig != w.codec || l.DefaultService != w.defaultService {
				t.Fatalf("listener: %+v", l)
			}
			if snap.Routes[w.codec] == nil {
				t.Fatalf("route configuration %s missing", w.codec)
			}
			c := snap.Clusters["server"]
			if c == nil || len(c.Endpoints) != 1 || c.Endpoints[0].Host.Addr != cfg.Upstream {
				t.Fatalf("cluster server: %+v", c)
			}
			if got := res.Routes[0].GetVirtualHosts()[0].GetDomains(); len(got) != 1 || got[0] != w.service {
				t.Errorf("domains %v", got)
			}
		})
	}
}

// buildRendered renders cfg and builds it as the proxy would, returning
// the snapshot and the YAML (for failure messages).
func buildRendered(t *testing.T, cfg bootstrapConfig) (*config.Config, []byte) {
	t.Helper()
	data, err := cfg.render()
	if err != nil {
		t.Fatal(err)
	}
	res, err := xdsapi.Parse(data)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, data)
	}
	snap, err := config.NewBuilder().Build(res)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, data)
	}
	return snap, data
}

func TestBootstrapAccessLog(t *testing.T) {
	cfg := bootstrapConfig{Listen: "127.0.0.1:1", Codec: "dubbo", Service: greeterInterface, Upstream: "127.0.0.1:2",
		AccessLog: filepath.Join(t.TempDir(), "access.log"), AccessLogPercent: 1}
	snap, data := buildRendered(t, cfg)
	if l := snap.Listeners["dubbo"]; l == nil || l.AccessLog == nil {
		t.Fatalf("no access log on the listener:\n%s", data)
	}
}

func TestBootstrapMirror(t *testing.T) {
	cfg := bootstrapConfig{Listen: "127.0.0.1:1", Codec: "dubbo", Service: greeterInterface, Upstream: "127.0.0.1:2", MirrorPercent: 10}
	snap, data := buildRendered(t, cfg)
	if c := snap.Clusters["mirror"]; c == nil || len(c.Endpoints) != 1 || c.Endpoints[0].Host.Addr != cfg.Upstream {
		t.Fatalf("mirror cluster: %+v\n%s", c, data)
	}
	rt := snap.Routes["dubbo"].Lookup(greeterInterface).Routes[0]
	if len(rt.Mirrors) != 1 || rt.Mirrors[0].Cluster != "mirror" {
		t.Fatalf("route mirrors %+v\n%s", rt.Mirrors, data)
	}
}

// TestBootstrapMTLS: the two proxies of the -mtls run, in the form the
// translator writes (docs/mesh-mode.md): a STRICT listener and a cluster
// originating mutual TLS to its endpoint.
func TestBootstrapMTLS(t *testing.T) {
	back, data := buildRendered(t, bootstrapConfig{Listen: "127.0.0.1:1", Codec: "dubbo", Service: greeterInterface, Upstream: "127.0.0.1:2", MTLSListener: true})
	if l := back.Listeners["dubbo"]; l == nil || l.MTLS != config.MTLSStrict {
		t.Fatalf("listener %+v: want STRICT mutual TLS\n%s", l, data)
	}
	front, data := buildRendered(t, bootstrapConfig{Listen: "127.0.0.1:1", Codec: "dubbo", Service: greeterInterface, Upstream: "127.0.0.1:2", MTLSUpstream: benchServerID})
	c := front.Clusters["server"]
	if c == nil || c.Mesh == nil || len(c.Mesh.Hosts) != 1 || front.Listeners["dubbo"].MTLS != config.MTLSOff {
		t.Fatalf("cluster %+v: want mutual TLS to its one endpoint\n%s", c, data)
	}
}

func TestSumSeries(t *testing.T) {
	text := `# HELP metamesh_mirror_requests_total x
metamesh_mirror_requests_total{cluster="mirror",protocol="dubbo",result="sent",route="all",service="s"} 40
metamesh_mirror_requests_total{cluster="mirror",protocol="dubbo",result="failed",route="all",service="s"} 3
metamesh_mirror_requests_total{cluster="other",protocol="dubbo",result="sent",route="b",service="s"} 2
metamesh_requests_total{result="sent"} 100
`
	if got := sumSeries(text, "metamesh_mirror_requests_total", `result="sent"`); got != 42 {
		t.Errorf("sumSeries = %v, want 42", got)
	}
}

func TestBootstrapRefusesBadInput(t *testing.T) {
	ok := bootstrapConfig{Listen: "127.0.0.1:1", Codec: "dubbo", Service: greeterInterface, Upstream: "127.0.0.1:2"}
	for name, edit := range map[string]func(*bootstrapConfig){
		"listen without port": func(c *bootstrapConfig) { c.Listen = "127.0.0.1" },
		"upstream bad port":   func(c *bootstrapConfig) { c.Upstream = "127.0.0.1:x" },
		"no service":          func(c *bootstrapConfig) { c.Service = "" },
		"no codec":            func(c *bootstrapConfig) { c.Codec = "" },
		"quote in service":    func(c *bootstrapConfig) { c.Service = `a"b` },
		"flow in default":     func(c *bootstrapConfig) { c.DefaultService = "a}b" },
		"log without percent": func(c *bootstrapConfig) { c.AccessLog = "/tmp/log" },
		"log over 100%":       func(c *bootstrapConfig) { c.AccessLog, c.AccessLogPercent = "/tmp/log", 101 },
		"mirror over 100%":    func(c *bootstrapConfig) { c.MirrorPercent = 101 },
	} {
		cfg := ok
		edit(&cfg)
		if _, err := cfg.render(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := ok.render(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestBootstrapGlobalLimit(t *testing.T) {
	for _, match := range []string{"", noMatchMethod} {
		cfg := bootstrapConfig{Listen: "127.0.0.1:1", Codec: "dubbo", Service: greeterInterface, Upstream: "127.0.0.1:2",
			GlobalLimit: &globalLimitConfig{Service: "127.0.0.1:3", Match: match}}
		snap, data := buildRendered(t, cfg)
		g := snap.Routes["dubbo"].Lookup(greeterInterface).Global
		if g == nil || g.Domain != "bench" || len(g.Descriptors) != 1 || len(g.Match) != min(len(match), 1) {
			t.Fatalf("match %q: global limit %+v\n%s", match, g, data)
		}
		if c := snap.Clusters["rls"]; c == nil || len(c.Endpoints) != 1 || c.Endpoints[0].Host.Addr != "127.0.0.1:3" {
			t.Fatalf("cluster rls: %+v\n%s", c, data)
		}
	}
}
