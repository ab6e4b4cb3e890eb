package v1alpha1

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	metamesh "github.com/metamesh/metamesh/crds/v1alpha1"
)

// TestSample converts the sample (Aeraki's own example, adapted to the
// greeter) and checks every field arrives where docs/authorization.md says.
func TestSample(t *testing.T) {
	data, err := os.ReadFile("../../../samples/aeraki-dubbo-authorizationpolicy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var in DubboAuthorizationPolicy
	if err := yaml.UnmarshalStrict(data, &in); err != nil {
		t.Fatal(err)
	}
	out, err := in.ToMetamesh()
	if err != nil {
		t.Fatal(err)
	}
	if errs := out.Validate(); len(errs) > 0 {
		t.Fatalf("converted policy does not validate: %v", errs)
	}
	if out.Kind != metamesh.KindAuthorizationPolicy || out.Namespace != "default" || out.Name != "greeter-allow-sayhello" {
		t.Errorf("metadata: %+v %+v", out.TypeMeta, out.ObjectMeta)
	}
	want := metamesh.AuthorizationPolicySpec{
		Protocols: []metamesh.Name{"dubbo"},
		Action:    metamesh.ActionAllow,
		Rules: []metamesh.AuthorizationRule{{
			From: []metamesh.AuthorizationSource{{Principals: []string{"cluster.local/ns/batch/sa/dubbo-consumer"}}},
			To:   []metamesh.AuthorizationOperation{{Services: []string{"org.apache.dubbo.samples.api.GreetingsService"}, Methods: []string{"sayHello"}}},
		}},
	}
	if !reflect.DeepEqual(out.Spec, want) {
		t.Errorf("spec\n%+v\nwant\n%+v", out.Spec, want)
	}
}

func TestConvertEveryField(t *testing.T) {
	in := &DubboAuthorizationPolicy{Spec: DubboAuthorizationPolicySpec{Action: "DENY", Rules: []Rule{{
		From: []From{{Source: &Source{Principals: []string{"a"}, NotPrincipals: []string{"b"}, Namespaces: []string{"c"}, NotNamespaces: []string{"d"}}}},
		To:   []To{{Operation: &Operation{Interfaces: []string{"e"}, NotInterfaces: []string{"f"}, Methods: []string{"g"}, NotMethods: []string{"h"}}}},
	}, {}}}}
	in.Name, in.Namespace = "p", "ns"
	out, err := in.ToMetamesh()
	if err != nil {
		t.Fatal(err)
	}
	r := out.Spec.Rules[0]
	if out.Spec.Action != metamesh.ActionDeny || len(out.Spec.Rules) != 2 ||
		!reflect.DeepEqual(r.From[0], metamesh.AuthorizationSource{Principals: []string{"a"}, NotPrincipals: []string{"b"}, Namespaces: []string{"c"}, NotNamespaces: []string{"d"}}) ||
		!reflect.DeepEqual(r.To[0], metamesh.AuthorizationOperation{Services: []string{"e"}, NotServices: []string{"f"}, Methods: []string{"g"}, NotMethods: []string{"h"}}) {
		t.Errorf("converted %+v", out.Spec)
	}
	if len(out.Spec.Rules[1].From) != 0 || len(out.Spec.Rules[1].To) != 0 {
		t.Errorf("an empty rule converts to %+v, want an empty rule (matches every request)", out.Spec.Rules[1])
	}
}

func TestConvertRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec DubboAuthorizationPolicySpec
		want string
	}{
		{"AUDIT is not Aeraki's", DubboAuthorizationPolicySpec{Action: "AUDIT"}, "spec.action: Unsupported value"},
		{"from without source", DubboAuthorizationPolicySpec{Rules: []Rule{{From: []From{{}}}}}, "spec.rules[0].from[0].source: Required value"},
		{"to without operation", DubboAuthorizationPolicySpec{Rules: []Rule{{To: []To{{}}}}}, "spec.rules[0].to[0].operation: Required value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &DubboAuthorizationPolicy{Spec: tc.spec}
			in.Name = "p"
			_, err := in.ToMetamesh()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "DubboAuthorizationPolicy/p: ") {
				t.Fatalf("ToMetamesh = %v, want %q", err, tc.want)
			}
		})
	}
}
