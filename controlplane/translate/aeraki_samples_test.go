package translate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/config"
)

const samplesDir = "testdata/aeraki-samples"

// TestAerakiSamples feeds MetaRouters in the shapes of Aeraki's samples
// (its demos and end-to-end tests, for Dubbo, Thrift, bRPC, tRPC, qza and
// videopacket: testdata/aeraki-samples/*.yaml, written for this test)
// through the Aeraki converter and the translator, each alone as Aeraki's
// demos apply them, over the ServiceEntries of their hosts
// (services.yaml, with the rate-limit services the globalRateLimit
// samples name). Every one must be accepted. The virtual host each one
// makes (for the sidecars of its namespace, and for its first gateway
// when it names gateways) is golden-tested in output.golden.yaml, with
// the cluster of its rate-limit service when it has a global limit.
// Codecs other than the built-ins are
// taken as they come (Options.KnownCodec nil), as by the control plane of
// a binary built with them.
func TestAerakiSamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	services := readInput(t, filepath.Join(samplesDir, "services.yaml"))
	golden := map[string]any{}
	n := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		if name == "services" || name == "output.golden" {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var a aeraki.MetaRouter
			if err := yaml.UnmarshalStrict(data, &a); err != nil {
				t.Fatal(err)
			}
			mr, err := a.ToMetamesh()
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if errs := mr.Validate(); len(errs) > 0 {
				t.Fatalf("converted MetaRouter invalid: %v", errs)
			}
			in := *services
			in.MetaRouters = []*v1alpha1.MetaRouter{mr}
			out := Translate(&in, Options{ListenAddress: "127.0.0.1"})
			key := keyOf(v1alpha1.KindMetaRouter, &mr.ObjectMeta)
			for _, typ := range []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionResolvedRefs} {
				if c := out.Status[key].Get(typ); c == nil || c.Status != "True" {
					t.Errorf("%s: %+v", typ, c)
				}
			}
			golden[name] = sampleVirtualHost(t, out, mr)
			// Where the codecs are built in, the proxy must accept what
			// the sidecars and the gateway get.
			in.ServiceEntries = slices.DeleteFunc(slices.Clone(in.ServiceEntries), func(se *v1alpha1.ServiceEntry) bool {
				proto := string(se.Spec.Ports[0].Protocol)
				return !registered(proto) && !plainProtocols[proto]
			})
			if !slices.ContainsFunc(in.ServiceEntries, func(se *v1alpha1.ServiceEntry) bool { return slices.Contains(se.Spec.Hosts, mr.Spec.Hosts[0]) }) {
				return
			}
			out = Translate(&in, Options{ListenAddress: "127.0.0.1"})
			if c := out.Status[key].Get(v1alpha1.ConditionAccepted); c == nil || c.Status != "True" {
				t.Fatalf("with the built-in codecs only: %+v", c)
			}
			for _, res := range []*xdsapi.Resources{out.Views.For(mr.Namespace), out.Views.ForGateway(firstGateway(mr))} {
				if _, err := config.NewBuilder().Build(res); err != nil {
					t.Errorf("the proxy refuses the translation: %v", err)
				}
			}
		})
	}
	if n < 30 {
		t.Errorf("%d samples, want the 30 and more written for this test", n)
	}
	got, err := json.Marshal(golden)
	if err == nil {
		got, err = yaml.JSONToYAML(got)
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(samplesDir, "output.golden.yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test -update and review the diff):\n%s", path, got)
	}
}

// sampleVirtualHost is the virtual host of mr's first host, as canonical
// JSON, in the view of the sidecars of mr's namespace and, when mr names
// gateways, in the view of the first.
func sampleVirtualHost(t *testing.T, out *Output, mr *v1alpha1.MetaRouter) any {
	t.Helper()
	views := map[string]*xdsapi.Resources{"sidecars in " + mr.Namespace: out.Views.For(mr.Namespace)}
	if gw := firstGateway(mr); gw != xdsapi.AnyGateway {
		views["gateway "+gw] = out.Views.ForGateway(gw)
	}
	host := string(mr.Spec.Hosts[0])
	got := map[string]any{}
	for view, res := range views {
		if g := mr.Spec.GlobalRateLimit; g != nil {
			got[view+": rate-limit service"] = limitCluster(t, res, g.RateLimitService)
		}
		for _, rc := range res.Routes {
			i := slices.IndexFunc(rc.VirtualHosts, func(vh *routev3.VirtualHost) bool { return vh.Domains[0] == host })
			if i < 0 {
				continue
			}
			got[view] = canonical(t, rc.VirtualHosts[i])
		}
		if got[view] == nil {
			t.Fatalf("no virtual host %s in the %s view", host, view)
		}
	}
	return got
}

// canonical is m as JSON values.
func canonical(t testing.TB, m proto.Message) any {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// limitCluster is the endpoints of the rate-limit service's cluster in
// res, as canonical JSON; the test fails when res lacks it.
func limitCluster(t *testing.T, res *xdsapi.Resources, service string) any {
	t.Helper()
	i := slices.IndexFunc(res.Endpoints, func(e *endpointv3.ClusterLoadAssignment) bool { return e.ClusterName == service })
	if i < 0 || !slices.ContainsFunc(res.Clusters, func(c *clusterv3.Cluster) bool { return c.Name == service }) {
		t.Fatalf("no cluster %s", service)
	}
	return canonical(t, res.Endpoints[i])
}

// firstGateway is the first gateway mr names, else AnyGateway.
func firstGateway(mr *v1alpha1.MetaRouter) string {
	if gws := gatewaysOf(mr.Spec.Gateways, mr.Namespace); len(gws.names) > 0 {
		return gws.names[0]
	}
	return xdsapi.AnyGateway
}
