package registry

import (
	"slices"
	"testing"
)

func addrs(ps []Provider) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Addr() + "@" + p.Params["version"]
	}
	return out
}

// TestIndex: an interface's application-level providers, through its
// mapping, its applications' instances and their metadata; its
// interface-level ones instead when it has any.
func TestIndex(t *testing.T) {
	v1, err := ParseMetadata(fixture(t, "zk-metadata-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := ParseMetadata(fixture(t, "zk-metadata-v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	inst := func(port int) *Instance {
		return &Instance{Address: "127.0.0.1", Port: port, Endpoints: map[string]int{"dubbo": port}, Revision: v1.Revision}
	}
	x := NewIndex()
	x.SetMapping(greetings, []string{"metamesh-greeter-v1", "metamesh-greeter-v2"})
	x.SetInstance("metamesh-greeter-v1", "127.0.0.1:20991", inst(20991))
	x.SetInstance("metamesh-greeter-v2", "127.0.0.1:20992", inst(20992))
	if got := addrs(x.Providers(greetings)); len(got) != 0 {
		t.Fatalf("providers before any metadata is known: %v", got)
	}
	if x.HasMetadata("metamesh-greeter-v1", v1.Revision) {
		t.Fatal("HasMetadata before SetMetadata")
	}
	x.SetMetadata("metamesh-greeter-v1", v1)
	x.SetMetadata("metamesh-greeter-v2", v2)
	x.SetInstance("metamesh-greeter-v1", "127.0.0.1:20993", inst(20993))
	want := []string{"127.0.0.1:20991@1.0.0", "127.0.0.1:20993@1.0.0", "127.0.0.1:20992@2.0.0"}
	if got := addrs(x.Providers(greetings)); !slices.Equal(got, want) {
		t.Fatalf("providers %v, want %v", got, want)
	}
	if got := x.InterfacesOf("metamesh-greeter-v2"); !slices.Equal(got, []string{greetings}) {
		t.Errorf("InterfacesOf v2 = %v", got)
	}
	if got := x.All(); len(got) != 1 || len(got[greetings]) != 3 {
		t.Errorf("All = %v", got)
	}

	// A provider that leaves is dropped.
	x.SetInstance("metamesh-greeter-v1", "127.0.0.1:20991", nil)
	if got, want := addrs(x.Providers(greetings)), []string{"127.0.0.1:20993@1.0.0", "127.0.0.1:20992@2.0.0"}; !slices.Equal(got, want) {
		t.Errorf("after one left: %v, want %v", got, want)
	}

	// Interface-level providers win while there are any.
	own := []Provider{{Interface: greetings, Address: "10.0.0.1", Port: 20880, Params: map[string]string{}}}
	x.SetInterface(greetings, own)
	if got := addrs(x.Providers(greetings)); !slices.Equal(got, []string{"10.0.0.1:20880@"}) {
		t.Errorf("with interface-level providers: %v", got)
	}
	x.SetInterface(greetings, nil)
	if got := x.Providers(greetings); len(got) != 2 {
		t.Errorf("interface-level providers gone: %v, want the 2 application-level ones", addrs(got))
	}

	// An instance carrying its metadata (etcd) needs none other, unless it
	// is of another revision.
	y := NewIndex()
	y.SetMapping(greetings, []string{"metamesh-greeter-v2"})
	in := inst(20992)
	in.Metadata = &v2
	y.SetInstance("metamesh-greeter-v2", "127.0.0.1:20992", in)
	if got := addrs(y.Providers(greetings)); !slices.Equal(got, []string{"127.0.0.1:20992@2.0.0"}) {
		t.Errorf("embedded metadata: %v", got)
	}
	in.Revision = "other"
	y.SetInstance("metamesh-greeter-v2", "127.0.0.1:20992", in)
	if got := y.Providers(greetings); len(got) != 0 {
		t.Errorf("embedded metadata of another revision used: %v", addrs(got))
	}
	y.SetMapping(greetings, nil)
	y.SetInstance("metamesh-greeter-v2", "127.0.0.1:20992", nil)
	if got := y.All(); len(got) != 0 {
		t.Errorf("emptied index lists %v", got)
	}
}
