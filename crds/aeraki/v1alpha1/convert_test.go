package v1alpha1

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	metamesh "github.com/metamesh/metamesh/crds/v1alpha1"
)

func decode[T any](t *testing.T, data []byte) *T {
	t.Helper()
	var obj T
	if err := yaml.UnmarshalStrict(data, &obj); err != nil {
		t.Fatal(err)
	}
	return &obj
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("../../samples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestTrafficSplitSample converts Aeraki's own traffic-split example and
// back again.
func TestTrafficSplitSample(t *testing.T) {
	in := decode[MetaRouter](t, readSample(t, "aeraki-traffic-split.yaml"))
	if in.APIVersion != "metaprotocol.aeraki.io/v1alpha1" {
		t.Fatalf("sample apiVersion %q", in.APIVersion)
	}
	out, err := in.ToMetamesh()
	if err != nil {
		t.Fatal(err)
	}
	if errs := out.Validate(); len(errs) > 0 {
		t.Fatalf("converted MetaRouter does not validate: %v", errs)
	}
	if out.APIVersion != "metamesh.io/v1alpha1" || out.Name != in.Name || out.Namespace != "meta-dubbo" {
		t.Errorf("metadata: %+v %+v", out.TypeMeta, out.ObjectMeta)
	}
	r := out.Spec.Routes[0]
	if r.Name != "traffic-split" || len(r.Match.Attributes) != 3 || *r.Match.Attributes["method"].Exact != "sayHello" {
		t.Errorf("route: %+v", r)
	}
	var got []string
	for _, d := range r.Route {
		got = append(got, fmt.Sprintf("%s=%d", d.Destination.Subset, *d.Weight))
	}
	if strings.Join(got, ",") != "v1=20,v2=80" {
		t.Errorf("split %v, want v1=20,v2=80", got)
	}

	back, err := fromMetamesh(out)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, in) {
		t.Errorf("round trip changed the MetaRouter:\n got %+v\nwant %+v", back, in)
	}
}

func TestApplicationProtocolSample(t *testing.T) {
	in := decode[ApplicationProtocol](t, readSample(t, "aeraki-applicationprotocol.yaml"))
	out, err := in.ToMetamesh()
	if err != nil {
		t.Fatal(err)
	}
	if errs := out.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if out.Name != "dubbo" || out.Namespace != "" || out.Spec.Codec != "dubbo" || out.Kind != metamesh.KindApplicationProtocol {
		t.Errorf("got %+v", out)
	}
}

// TestConvert covers Aeraki's other MetaRouter examples (in Aeraki's own
// words) and the values metamesh can't honour.
func TestConvert(t *testing.T) {
	const head = "apiVersion: metaprotocol.aeraki.io/v1alpha1\nkind: MetaRouter\nmetadata: {name: r, namespace: meta-dubbo}\nspec:\n  hosts: [org.apache.dubbo.samples.basic.api.demoservice]\n"
	const v1Route = "  routes:\n  - name: v1\n    route:\n    - destination: {host: org.apache.dubbo.samples.basic.api.demoservice, subset: v1}\n"
	tests := []struct {
		name    string
		spec    string
		wantErr string // a field the error must name; empty: must convert and validate
		check   func(t *testing.T, out *metamesh.MetaRouter)
	}{
		{"mirroring", `  routes:
  - name: traffic-mirroring
    route:
    - destination: {host: org.apache.dubbo.samples.basic.api.demoservice, subset: v1}
    mirror: {host: org.apache.dubbo.samples.basic.api.demoservice, subset: v2}
    mirrorPercentage: {value: 100.0}
`, "", func(t *testing.T, out *metamesh.MetaRouter) {
			r := out.Spec.Routes[0]
			if r.Mirror == nil || r.Mirror.Subset != "v2" || *r.MirrorPercentage != 100 {
				t.Errorf("mirror %+v %v", r.Mirror, r.MirrorPercentage)
			}
		}},
		{"local rate limit", `  localRateLimit:
    tokenBucket: {fillInterval: 60s, maxTokens: 10, tokensPerFill: 10}
    conditions:
    - tokenBucket: {fillInterval: 10s, maxTokens: 2}
      match: {attributes: {method: {exact: sayHello}}}
` + v1Route, "", func(t *testing.T, out *metamesh.MetaRouter) {
			rl := out.Spec.LocalRateLimit
			if rl.TokenBucket.FillInterval != "60s" || *rl.TokenBucket.TokensPerFill != 10 ||
				rl.Conditions[0].TokenBucket.MaxTokens != 2 || rl.Conditions[0].TokenBucket.TokensPerFill != nil {
				t.Errorf("rate limit %+v", rl)
			}
		}},
		{"header mutation, unnamed route, port, no weights", `  routes:
  - route:
    - destination: {host: a, port: {number: 20880}}
    - destination: {host: b}
    requestMutation: [{key: foo, value: bar}]
`, "", func(t *testing.T, out *metamesh.MetaRouter) {
			r := out.Spec.Routes[0]
			if r.Name != "route-0" || *r.Route[0].Destination.Port != 20880 || r.Route[0].Weight != nil || r.RequestMutation[0].Value != "bar" {
				t.Errorf("route %+v", r)
			}
		}},
		{"presence match", `  routes:
  - name: present
    match: {attributes: {batchjob: {}}}
    route:
    - destination: {host: a}
`, "", nil},
		{"global rate limit", `  globalRateLimit:
    domain: production
    match: {attributes: {method: {exact: sayHello}}}
    rateLimitService: outbound|8081||rate-limit-server.meta-dubbo.svc.cluster.local
    requestTimeout: 100ms
    denyOnFail: true
    descriptors: [{property: method, descriptorKey: method}]
` + v1Route, "", func(t *testing.T, out *metamesh.MetaRouter) {
			g := out.Spec.GlobalRateLimit
			want := metamesh.RateLimitDescriptor{Property: "method", DescriptorKey: "method"}
			if g == nil || g.Domain != "production" || *g.Match.Attributes["method"].Exact != "sayHello" ||
				g.RateLimitService != "outbound|8081||rate-limit-server.meta-dubbo.svc.cluster.local" ||
				*g.RequestTimeout != "100ms" || !g.DenyOnFail || len(g.Descriptors) != 1 || g.Descriptors[0] != want {
				t.Errorf("global rate limit %+v", g)
			}
		}},
		{"global rate limit, no match or timeout", `  globalRateLimit:
    domain: production
    match: {}
    rateLimitService: rls.example:8081
    descriptors: [{property: method, descriptorKey: method}]
` + v1Route, "", func(t *testing.T, out *metamesh.MetaRouter) {
			if g := out.Spec.GlobalRateLimit; g.Match != nil || g.RequestTimeout != nil || g.DenyOnFail {
				t.Errorf("global rate limit %+v", g)
			}
		}},
		{"global rate limit, unreadable service", `  globalRateLimit:
    domain: production
    match: {}
    rateLimitService: rate-limit-server
    descriptors: [{property: method, descriptorKey: method}]
` + v1Route, "spec.globalRateLimit.rateLimitService", nil},
		{"gateways", "  gateways: [istio-system/ingress-gateway, mesh]\n" + v1Route, "", func(t *testing.T, out *metamesh.MetaRouter) {
			if !slices.Equal(out.Spec.Gateways, metamesh.Gateways{"istio-system/ingress-gateway", "mesh"}) {
				t.Errorf("gateways %q", out.Spec.Gateways)
			}
		}},
		{"exportTo own namespace and another", "  exportTo: [\".\", shop]\n" + v1Route, "", func(t *testing.T, out *metamesh.MetaRouter) {
			if !slices.Equal(out.Spec.ExportTo, metamesh.ExportTo{".", "shop"}) {
				t.Errorf("exportTo %q", out.Spec.ExportTo)
			}
		}},
		{"exportTo all", "  exportTo: [\"*\"]\n" + v1Route, "", nil},
		{"fractional mirror percentage", `  routes:
  - name: m
    route: [{destination: {host: a}}]
    mirror: {host: a, subset: v2}
    mirrorPercentage: {value: 12.5}
`, "spec.routes[0].mirrorPercentage.value", nil},
		{"port out of range", `  routes:
  - name: p
    route: [{destination: {host: a, port: {number: 70000}}}]
`, "spec.routes[0].route[0].destination.port.number", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := decode[MetaRouter](t, []byte(head+tc.spec))
			out, err := in.ToMetamesh()
			if err == nil {
				// What converts must validate; what doesn't is named
				// by either.
				err = out.Validate().ToAggregate()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr+":") {
					t.Fatalf("want an error naming %s, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

func TestFromMetameshRejectsWhatAerakiLacks(t *testing.T) {
	d := metamesh.Duration("2s")
	in := &metamesh.MetaRouter{Spec: metamesh.MetaRouterSpec{Routes: []metamesh.MetaRoute{{Name: "r", Timeout: &d}}}}
	if _, err := fromMetamesh(in); err == nil || !strings.Contains(err.Error(), "spec.routes[0].timeout") {
		t.Errorf("want an error naming spec.routes[0].timeout, got %v", err)
	}
}
