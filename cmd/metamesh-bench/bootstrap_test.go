package main

import (
	"os"
	"path/filepath"
	"testing"

	_ "github.com/metamesh/metamesh/protocols/dubbo" // registers the codec
	"github.com/metamesh/metamesh/proxy/snapshot"
)

func TestBootstrapBuilds(t *testing.T) {
	cfg := bootstrapConfig{Listen: "127.0.0.1:20001", Interface: greeterInterface, Upstream: "127.0.0.1:20002"}
	path, err := cfg.write(t.TempDir())
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
	res, err := snapshot.Parse(data)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, data)
	}
	if len(res.Listeners) != 1 || len(res.Routes) != 1 || len(res.Clusters) != 1 {
		t.Fatalf("resources: %d listeners, %d routes, %d clusters", len(res.Listeners), len(res.Routes), len(res.Clusters))
	}
	snap, err := snapshot.NewBuilder().Build(res)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, data)
	}
	l := snap.Listeners["dubbo"]
	if l == nil || l.Address != cfg.Listen || l.CodecName != "dubbo" || l.Codec == nil || l.RouteConfig != "dubbo" {
		t.Fatalf("listener: %+v", l)
	}
	if snap.Routes["dubbo"] == nil {
		t.Fatal("route configuration dubbo missing")
	}
	c := snap.Clusters["greeter"]
	if c == nil || len(c.Endpoints) != 1 || c.Endpoints[0].Host.Addr != cfg.Upstream {
		t.Fatalf("cluster greeter: %+v", c)
	}
	if got := res.Routes[0].GetVirtualHosts()[0].GetDomains(); len(got) != 1 || got[0] != greeterInterface {
		t.Errorf("domains %v", got)
	}
}

func TestBootstrapRefusesBadInput(t *testing.T) {
	for _, cfg := range []bootstrapConfig{
		{Listen: "127.0.0.1", Interface: greeterInterface, Upstream: "127.0.0.1:1"},
		{Listen: "127.0.0.1:1", Interface: greeterInterface, Upstream: "127.0.0.1:x"},
		{Listen: "127.0.0.1:1", Interface: "", Upstream: "127.0.0.1:2"},
		{Listen: "127.0.0.1:1", Interface: `a"b`, Upstream: "127.0.0.1:2"},
	} {
		if _, err := cfg.render(); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}
