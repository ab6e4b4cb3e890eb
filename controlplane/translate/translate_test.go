package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/config"

	_ "github.com/metamesh/metamesh/protocols/dubbo"
	_ "github.com/metamesh/metamesh/protocols/thrift"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Each folder under testdata is a case: input.yaml (the objects),
// options.yaml (optional: captureOnly, mtlsMode, trustDomain) and output.golden.yaml (the
// resources and every object's conditions).
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/input.yaml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out := Translate(readInput(t, in), caseOptions(t, dir))
			got := render(t, out)
			golden := filepath.Join(dir, "output.golden.yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run go test -update and review the diff):\n%s", golden, got)
			}
			// Whatever the translator emits, a proxy must accept.
			if missing := unregistered(out); missing != "" {
				t.Logf("proxy acceptance check skipped: codec %s is not built yet", missing)
			} else if _, err := config.NewBuilder().Build(out.Resources); err != nil {
				t.Errorf("the proxy refuses the translation: %v", err)
			}
		})
	}
}

// caseOptions are the Options of the case in dir: the defaults, with
// those of its options.yaml when it has one.
func caseOptions(t testing.TB, dir string) Options {
	t.Helper()
	opts := Options{ListenAddress: "127.0.0.1", KnownCodec: known}
	data, err := os.ReadFile(filepath.Join(dir, "options.yaml"))
	if errors.Is(err, fs.ErrNotExist) {
		return opts
	}
	var o struct {
		CaptureOnly bool              `json:"captureOnly"`
		MTLSMode    v1alpha1.MTLSMode `json:"mtlsMode"`
		TrustDomain string            `json:"trustDomain"`
	}
	if err == nil {
		err = yaml.UnmarshalStrict(data, &o)
	}
	if err != nil {
		t.Fatalf("%s/options.yaml: %v", dir, err)
	}
	opts.CaptureOnly, opts.MTLSMode, opts.TrustDomain = o.CaptureOnly, o.MTLSMode, o.TrustDomain
	return opts
}

// known accepts the registered codecs and the built-ins still to come, so
// the cases can show Thrift and Redis conflicts.
func known(name string) bool { return registered(name) || name == "thrift" || name == "redis" }

func registered(name string) bool {
	for _, n := range protocols.Names() {
		if n == name {
			return true
		}
	}
	return false
}

func unregistered(out *Output) string {
	for _, l := range out.Resources.Listeners {
		var cfg xdsapi.MetaProtocolProxy
		if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&cfg); err == nil && !registered(cfg.GetCodec()) {
			return cfg.GetCodec()
		}
	}
	return ""
}

// readInput decodes a multi-document YAML file of metamesh objects.
func readInput(t testing.TB, path string) *Input {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	in := &Input{}
	for i, doc := range strings.Split(string(data), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var meta struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		if meta.APIVersion == aeraki.SchemeGroupVersion.String() && meta.Kind == "MetaRouter" {
			var a aeraki.MetaRouter
			if err := yaml.UnmarshalStrict([]byte(doc), &a); err != nil {
				t.Fatalf("%s: document %d: %v", path, i, err)
			}
			mr, err := a.ToMetamesh()
			if err != nil {
				t.Fatalf("%s: document %d: %v", path, i, err)
			}
			in.MetaRouters = append(in.MetaRouters, mr)
			continue
		}
		var obj any
		switch meta.Kind {
		case "ServiceEntry":
			o := &v1alpha1.ServiceEntry{}
			in.ServiceEntries, obj = append(in.ServiceEntries, o), o
		case "DestinationPolicy":
			o := &v1alpha1.DestinationPolicy{}
			in.DestinationPolicies, obj = append(in.DestinationPolicies, o), o
		case "MetaRouter":
			o := &v1alpha1.MetaRouter{}
			in.MetaRouters, obj = append(in.MetaRouters, o), o
		case "ApplicationProtocol":
			o := &v1alpha1.ApplicationProtocol{}
			in.ApplicationProtocols, obj = append(in.ApplicationProtocols, o), o
		case "Sidecar":
			o := &v1alpha1.Sidecar{}
			in.Sidecars, obj = append(in.Sidecars, o), o
		case "AuthorizationPolicy":
			o := &v1alpha1.AuthorizationPolicy{}
			in.AuthorizationPolicies, obj = append(in.AuthorizationPolicies, o), o
		default:
			t.Fatalf("%s: document %d: kind %q", path, i, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
	}
	return in
}

// render is the golden form: resources as canonical JSON (protojson output
// is deliberately unstable in spacing, so it is re-encoded), then YAML.
func render(t testing.TB, out *Output) []byte {
	t.Helper()
	doc := map[string]any{}
	add := func(key string, m proto.Message) { doc[key] = append(asList(doc[key]), canonical(t, m)) }
	for _, m := range out.Resources.Listeners {
		add("listeners", m)
	}
	for _, m := range out.Resources.Routes {
		add("routes", m)
	}
	for _, m := range out.Resources.Clusters {
		add("clusters", m)
	}
	for _, m := range out.Resources.Endpoints {
		add("endpoints", m)
	}
	status := map[string]any{}
	for k, conds := range out.Status {
		var cs []map[string]string
		for _, c := range conds {
			cs = append(cs, map[string]string{"type": c.Type, "status": string(c.Status), "reason": c.Reason, "message": c.Message})
		}
		status[k] = cs
	}
	doc["status"] = status
	if v := out.Views; len(v.Namespaces) > 0 || v.Default != out.Resources {
		views := map[string]any{"(default)": summary(v.Default)}
		for ns, r := range v.Namespaces {
			views[ns] = summary(r)
		}
		doc["views"] = views
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.JSONToYAML(js)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// summary is a view in short: listeners, each route configuration's
// virtual hosts with their routes ("name → cluster"), and clusters.
func summary(r *xdsapi.Resources) map[string]any {
	var listeners, clusters []string
	for _, l := range r.Listeners {
		listeners = append(listeners, l.GetName())
	}
	for _, c := range r.Clusters {
		clusters = append(clusters, c.GetName())
	}
	routes := map[string]any{}
	for _, rc := range r.Routes {
		vhs := map[string][]string{}
		for _, vh := range rc.GetVirtualHosts() {
			for _, rt := range vh.GetRoutes() {
				to := rt.GetRoute().GetCluster()
				for _, w := range rt.GetRoute().GetWeightedClusters().GetClusters() {
					to += " " + w.GetName()
				}
				vhs[vh.GetName()] = append(vhs[vh.GetName()], rt.GetName()+" → "+strings.TrimSpace(to))
			}
		}
		routes[rc.GetName()] = vhs
	}
	return map[string]any{"listeners": listeners, "routes": routes, "clusters": clusters}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// The same objects in any order translate to the same resources.
func TestDeterministic(t *testing.T) {
	in := readInput(t, "testdata/demo/input.yaml")
	a := render(t, Translate(in, Options{}))
	rev := *in
	rev.ServiceEntries = reversed(in.ServiceEntries)
	rev.MetaRouters = reversed(in.MetaRouters)
	rev.DestinationPolicies = reversed(in.DestinationPolicies)
	if b := render(t, Translate(&rev, Options{})); !bytes.Equal(a, b) {
		t.Fatal("translation depends on input order")
	}
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}
