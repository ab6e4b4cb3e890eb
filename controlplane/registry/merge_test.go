package registry

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

const zk1, zk2 = "zookeeper://a:2181", "zookeeper://b:2181"

func prov(iface, addr string, port int, reg string, params ...string) Provider {
	p := Provider{Interface: iface, Address: addr, Port: port, Registry: reg, Params: map[string]string{}}
	for i := 0; i+1 < len(params); i += 2 {
		p.Params[params[i]] = params[i+1]
	}
	return p
}

func entry(name string, hosts []string, port int32, eps ...v1alpha1.Endpoint) *v1alpha1.ServiceEntry {
	se := &v1alpha1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1alpha1.ServiceEntrySpec{Ports: []v1alpha1.ServicePort{{Number: v1alpha1.PortNumber(port), Name: "rpc", Protocol: "dubbo"}}, Endpoints: eps}}
	for _, h := range hosts {
		se.Spec.Hosts = append(se.Spec.Hosts, v1alpha1.Host(h))
	}
	return se
}

func TestMerge(t *testing.T) {
	own := v1alpha1.Endpoint{Address: "192.0.2.9"}
	base := &translate.Input{ServiceEntries: []*v1alpha1.ServiceEntry{
		entry("empty", []string{"com.x.Empty"}, 9000),
		entry("own", []string{"com.x.Own"}, 9001, own),
		entry("two", []string{"com.x.A", "com.x.B"}, 9002),
	}}
	ps := []Provider{
		prov("com.x.Empty", "10.0.0.1", 20880, zk1, "version", "1.0.0"),
		prov("com.x.Empty", "10.0.0.1", 20880, zk2, "version", "1.0.0"), // the same, in another registry
		prov("com.x.Empty", "10.0.0.2", 20880, zk2, "version", "2.0.0", "weight", "50"),
		prov("com.x.Own", "10.0.0.3", 20880, zk1),
		prov("com.x.A", "10.0.0.4", 20880, zk1),
		prov("com.x.Made", "10.0.0.5", 20881, zk1),
		prov("com.x.Made", "10.0.0.6", 20881, zk1),
		prov("com.x.Made", "10.0.0.7", 20882, zk1),
	}
	out := Merge(base, ps, nil)
	if len(base.ServiceEntries[0].Spec.Endpoints) != 0 {
		t.Fatal("Merge modified its input")
	}
	byName := map[string]*v1alpha1.ServiceEntry{}
	for _, se := range out.Input.ServiceEntries {
		byName[se.Name] = se
	}
	if len(byName) != 4 {
		t.Fatalf("%d ServiceEntries, want 4: %v", len(byName), byName)
	}

	empty := byName["empty"]
	if n := len(empty.Spec.Endpoints); n != 2 {
		t.Fatalf("empty: %d endpoints, want 2 (one provider listed by two registries is one)", n)
	}
	ep := empty.Spec.Endpoints[0]
	if ep.Address != "10.0.0.1" || ep.Ports["rpc"] != 20880 || ep.Labels["version"] != "1.0.0" || ep.Labels[RegistryLabel] != "zookeeper_a_2181" {
		t.Errorf("empty: endpoint %+v", ep)
	}
	if w := empty.Spec.Endpoints[1].Weight; w == nil || *w != 50 {
		t.Errorf("empty: weight parameter not the endpoint's weight: %v", w)
	}
	if got := empty.Annotations[RegistryAnnotation]; got != zk1+","+zk2 {
		t.Errorf("empty: annotation %q", got)
	}

	if eps := byName["own"].Spec.Endpoints; len(eps) != 1 || eps[0].Address != own.Address {
		t.Errorf("own: endpoints %v, want its own only", eps)
	}
	if eps := byName["two"].Spec.Endpoints; len(eps) != 0 {
		t.Errorf("two: endpoints %v; a ServiceEntry of several hosts takes none", eps)
	}
	if len(out.Notes) != 1 || !strings.Contains(out.Notes[0], "com.x.A") {
		t.Errorf("notes %q, want one about com.x.A", out.Notes)
	}

	made := byName[MadeName("com.x.Made")]
	if made == nil {
		t.Fatalf("no ServiceEntry made for com.x.Made: %v", byName)
	}
	if made.Name != "registry-com-x-made" || made.Namespace != MadeNamespace || len(made.Spec.Hosts) != 1 || made.Spec.Hosts[0] != "com.x.Made" {
		t.Errorf("made: %+v", made.ObjectMeta)
	}
	if p := made.Spec.Ports; len(p) != 1 || p[0].Number != 20881 || p[0].Protocol != "dubbo" {
		t.Errorf("made: ports %+v, want 20881 (most providers') dubbo", p)
	}
	if len(made.Spec.Endpoints) != 3 || made.Spec.Endpoints[2].Ports["dubbo"] != 20882 {
		t.Errorf("made: endpoints %+v", made.Spec.Endpoints)
	}
	for _, h := range []string{"com.x.A", "com.x.B", "com.x.Own", "com.x.Empty"} {
		if byName[MadeName(h)] != nil {
			t.Errorf("a ServiceEntry was made for %s, which has one", h)
		}
	}

	// The registry's port option wins over the providers' port.
	out = Merge(&translate.Input{}, ps[5:], map[string]int{zk1: 15001})
	if p := out.Input.ServiceEntries[0].Spec.Ports[0].Number; p != 15001 {
		t.Errorf("made with ?port=15001: port %d", p)
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want Target
		err  string
	}{
		{in: "zookeeper://h:2181", want: Target{Scheme: "zookeeper", Hosts: []string{"h:2181"}, Root: "/dubbo"}},
		{in: "zookeeper://a:1,b:2/mesh/", want: Target{Scheme: "zookeeper", Hosts: []string{"a:1", "b:2"}, Root: "/mesh"}},
		{in: "etcd://127.0.0.1:2379/?port=20880", want: Target{Scheme: "etcd", Hosts: []string{"127.0.0.1:2379"}, Root: "/dubbo", Port: 20880}},
		{in: "nacos://h:8848", err: "unknown scheme"},
		{in: "h:2181", err: "want SCHEME://"},
		{in: "zookeeper://h", err: "not HOST:PORT"},
		{in: "zookeeper://a:1,,b:2", err: "not HOST:PORT"},
		{in: "zookeeper://h:1?port=0", err: "not a port"},
		{in: "zookeeper://h:1?port=20880x", err: "not a port"},
		{in: "zookeeper://h:1?timeout=3s", err: "unknown option"},
	}
	for _, tt := range tests {
		got, err := ParseTarget(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		tt.want.URL = tt.in
		if err != nil || got.Scheme != tt.want.Scheme || strings.Join(got.Hosts, ",") != strings.Join(tt.want.Hosts, ",") ||
			got.Root != tt.want.Root || got.Port != tt.want.Port || got.URL != tt.in {
			t.Errorf("%s: got %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
