package registry

import (
	"os"
	"reflect"
	"testing"
)

// The fixtures are what a dubbo-go v3.3.0 provider registering
// application-level only wrote (testdata/README.md).
const greetings = "org.apache.dubbo.samples.api.GreetingsService"

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/dubbo-go-3.3.0-" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMapping(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []string
	}{
		{"dubbo-go", string(fixture(t, "zk-mapping.txt")), []string{"metamesh-greeter-v1", "metamesh-greeter-v2"}},
		{"one", "app", []string{"app"}},
		{"blanks and duplicates", " a,,b , a,", []string{"a", "b"}},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseMapping([]byte(tc.data)); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseMapping(%q) = %q, want %q", tc.data, got, tc.want)
			}
		})
	}
}

func TestParseInstanceDubboGo(t *testing.T) {
	zk, err := ParseCuratorInstance(fixture(t, "zk-instance.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Instance{Address: "127.0.0.1", Port: 20993, Endpoints: map[string]int{"dubbo": 20993}, Revision: "14231299848", StorageType: "remote"}
	if !reflect.DeepEqual(zk, want) {
		t.Errorf("ZooKeeper instance %+v, want %+v", zk, want)
	}

	etcd, err := ParseEtcdInstance(fixture(t, "etcd-instance.json"))
	if err != nil {
		t.Fatal(err)
	}
	if etcd.Metadata == nil {
		t.Fatal("etcd instance: embedded metadata not read")
	}
	md := *etcd.Metadata
	etcd.Metadata = nil
	want = Instance{Address: "127.0.0.1", Port: 20991, Endpoints: map[string]int{"dubbo": 20991}, Revision: "14231299848", StorageType: "remote"}
	if !reflect.DeepEqual(etcd, want) {
		t.Errorf("etcd instance %+v, want %+v", etcd, want)
	}
	if md.App != "metamesh-greeter-v1" || md.Revision != "14231299848" || len(md.Services) != 1 || md.Services[0].Version != "1.0.0" {
		t.Errorf("etcd instance's metadata %+v", md)
	}
}

func TestParseInstanceRefused(t *testing.T) {
	for name, data := range map[string]string{
		"not JSON":       `{"address":`,
		"no address":     `{"port":1,"payload":{"metadata":{"dubbo.metadata.revision":"1"}}}`,
		"port 0":         `{"address":"h","payload":{"metadata":{"dubbo.metadata.revision":"1"}}}`,
		"port too big":   `{"address":"h","port":65536,"payload":{"metadata":{"dubbo.metadata.revision":"1"}}}`,
		"no revision":    `{"address":"h","port":1,"payload":{"metadata":{}}}`,
		"bad endpoints":  `{"address":"h","port":1,"payload":{"metadata":{"dubbo.metadata.revision":"1","dubbo.endpoints":"[{"}}}`,
		"endpoints type": `{"address":"h","port":1,"payload":{"metadata":{"dubbo.metadata.revision":"1","dubbo.endpoints":"{}"}}}`,
	} {
		if in, err := ParseCuratorInstance([]byte(data)); err == nil {
			t.Errorf("%s: accepted as %+v", name, in)
		}
	}
	if in, err := ParseEtcdInstance([]byte(`{"Host":"h","Port":1,"Metadata":{}}`)); err == nil {
		t.Errorf("etcd instance without revision accepted as %+v", in)
	}
}

func TestParseMetadataDubboGo(t *testing.T) {
	for file, version := range map[string]string{"zk-metadata-v1.json": "1.0.0", "zk-metadata-v2.json": "2.0.0"} {
		md, err := ParseMetadata(fixture(t, file))
		if err != nil {
			t.Fatal(err)
		}
		if md.Revision != "14231299848" || len(md.Services) != 1 {
			t.Fatalf("%s: %+v", file, md)
		}
		s := md.Services[0]
		if s.Interface != greetings || s.Version != version || s.Protocol != "dubbo" || s.Group != "" {
			t.Errorf("%s: service %+v", file, s)
		}
		if s.Params["application"] != md.App || s.Params["methods"] == "" {
			t.Errorf("%s: params %v", file, s.Params)
		}
		if _, ok := s.Params["lane"]; ok {
			t.Errorf("%s: a provider's own parameter in the metadata; the docs say it is not there", file)
		}
	}
	if _, err := ParseMetadata([]byte(`{"services":[]}`)); err == nil {
		t.Error("metadata with services as a list accepted")
	}
}

// TestAppProviders: the instance's own address and dubbo port (the
// metadata's port is that of whichever instance published it first), the
// service's version and parameters.
func TestAppProviders(t *testing.T) {
	in, err := ParseCuratorInstance(fixture(t, "zk-instance.json"))
	if err != nil {
		t.Fatal(err)
	}
	md, err := ParseMetadata(fixture(t, "zk-metadata-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	ps := AppProviders(greetings, in, md)
	if len(ps) != 1 {
		t.Fatalf("%d providers, want 1: %+v", len(ps), ps)
	}
	p := ps[0]
	if p.Interface != greetings || p.Addr() != "127.0.0.1:20993" {
		t.Errorf("provider %s at %s, want %s at 127.0.0.1:20993", p.Interface, p.Addr(), greetings)
	}
	l := Labels(p)
	for k, v := range map[string]string{"version": "1.0.0", "application": "metamesh-greeter-v1", "serialization": "hessian2"} {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, l[k], v, l)
		}
	}
	if _, ok := l["timestamp"]; ok {
		t.Errorf("timestamp is a label: %v", l)
	}

	if ps := AppProviders("org.example.Other", in, md); len(ps) != 0 {
		t.Errorf("providers of an interface the metadata lacks: %+v", ps)
	}
	tri := in
	tri.Endpoints = map[string]int{"tri": 50051}
	if ps := AppProviders(greetings, tri, md); len(ps) != 0 {
		t.Errorf("providers of an instance without a dubbo port: %+v", ps)
	}
	bare := in
	bare.Endpoints = nil
	if ps := AppProviders(greetings, bare, md); len(ps) != 1 || ps[0].Port != in.Port {
		t.Errorf("instance listing no endpoints: %+v, want its port %d", ps, in.Port)
	}
	grouped := md
	grouped.Services = []ServiceInfo{{Interface: greetings, Group: "g", Version: "3", Protocol: "dubbo"}, {Interface: greetings, Protocol: "tri"}}
	if ps := AppProviders(greetings, in, grouped); len(ps) != 1 || ps[0].Params["group"] != "g" || ps[0].Params["version"] != "3" {
		t.Errorf("grouped service: %+v", ps)
	}
}

func FuzzParseInstance(f *testing.F) {
	f.Add(fixture(f, "zk-instance.json"))
	f.Add(fixture(f, "etcd-instance.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (Instance, error){ParseCuratorInstance, ParseEtcdInstance} {
			in, err := parse(data)
			if err != nil {
				continue
			}
			if in.Address == "" || in.Port < 1 || in.Port > 65535 || in.Revision == "" {
				t.Fatalf("%q: accepted %+v", data, in)
			}
			for proto, port := range in.Endpoints {
				if proto == "" || port < 1 || port > 65535 {
					t.Fatalf("%q: endpoint %q:%d", data, proto, port)
				}
			}
		}
	})
}
