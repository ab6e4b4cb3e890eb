package kube

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/controlplane/translate"
	aerakidubbo "github.com/metamesh/metamesh/crds/aeraki/dubbo/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// TestBuildAuthorizationPolicies reads metamesh's and Aeraki's policies:
// both reach the listener of the Service they protect; one Aeraki can't
// express is refused on the Aeraki object, with the field.
func TestBuildAuthorizationPolicies(t *testing.T) {
	l := greeter()
	l.authzPolicies.Items = []v1alpha1.AuthorizationPolicy{{
		ObjectMeta: om("shop", "allow-hello"),
		Spec: v1alpha1.AuthorizationPolicySpec{Hosts: []v1alpha1.Host{"org.example.Greeter"},
			Rules: []v1alpha1.AuthorizationRule{{To: []v1alpha1.AuthorizationOperation{{Methods: []string{"sayHello"}}}}}},
	}}
	l.dubboAuthzPolicies.Items = []aerakidubbo.DubboAuthorizationPolicy{{
		ObjectMeta: om("shop", "deny-dev"),
		Spec: aerakidubbo.DubboAuthorizationPolicySpec{Action: "DENY",
			Rules: []aerakidubbo.Rule{{From: []aerakidubbo.From{{Source: &aerakidubbo.Source{Namespaces: []string{"dev"}}}}}}},
	}, {
		ObjectMeta: om("shop", "bad"),
		Spec:       aerakidubbo.DubboAuthorizationPolicySpec{Rules: []aerakidubbo.Rule{{To: []aerakidubbo.To{{}}}}},
	}}
	s := build(l, "cluster.local")
	if n := len(s.input.AuthorizationPolicies); n != 2 {
		t.Fatalf("%d AuthorizationPolicies in the input, want 2", n)
	}
	refused := s.refused[objectID{"DubboAuthorizationPolicy.dubbo.aeraki.io", "shop", "bad"}]
	if refused == nil || !strings.Contains(refused[0].Message, "spec.rules[0].to[0].operation") {
		t.Errorf("the unconvertible policy: conditions %v, want a refusal naming spec.rules[0].to[0].operation", refused)
	}
	if id := s.origins[translate.Key(v1alpha1.KindAuthorizationPolicy, "shop", "deny-dev")]; id.kind != "DubboAuthorizationPolicy.dubbo.aeraki.io" {
		t.Errorf("the converted policy's status goes to %v, want the Aeraki object", id)
	}

	out := translate.Translate(s.input, translate.Options{})
	var cfg xdsapi.MetaProtocolProxy
	if err := out.Resources.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range cfg.GetAuthorization().GetPolicies() {
		names = append(names, p.GetName())
	}
	if strings.Join(names, ",") != "shop/allow-hello,shop/deny-dev" {
		t.Errorf("listener policies %v, want shop/allow-hello and shop/deny-dev", names)
	}
}

// TestAuthorizationPolicyStatus: metamesh's and Aeraki's policies get
// their conditions like every kind; a policy for no known host, and an
// Aeraki one metamesh can't convert, are refused with the reason.
func TestAuthorizationPolicyStatus(t *testing.T) {
	cfg, c := apiServer(t)
	ctx := context.Background()
	ns := namespace(t, c, "authz")
	createService(t, c, ns, "orders", 20891, "dubbo", "v1")
	host := "orders." + ns + ".svc.cluster.local"
	allow := &v1alpha1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-hello"},
		Spec: v1alpha1.AuthorizationPolicySpec{Hosts: []v1alpha1.Host{v1alpha1.Host(host)},
			Rules: []v1alpha1.AuthorizationRule{{To: []v1alpha1.AuthorizationOperation{{Methods: []string{"sayHello"}}}}}},
	}
	orphan := &v1alpha1.AuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nowhere"},
		Spec:       v1alpha1.AuthorizationPolicySpec{Hosts: []v1alpha1.Host{"nowhere.example"}},
	}
	dap := &aerakidubbo.DubboAuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny-dev"},
		Spec: aerakidubbo.DubboAuthorizationPolicySpec{Action: "DENY",
			Rules: []aerakidubbo.Rule{{From: []aerakidubbo.From{{Source: &aerakidubbo.Source{Namespaces: []string{"dev"}}}}}}},
	}
	bad := &aerakidubbo.DubboAuthorizationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad"},
		Spec:       aerakidubbo.DubboAuthorizationPolicySpec{Rules: []aerakidubbo.Rule{{To: []aerakidubbo.To{{}}}}},
	}
	for _, o := range []client.Object{allow, orphan, dap, bad} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	startSource(t, cfg, Options{})
	wantCondition(t, c, allow, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantCondition(t, c, allow, v1alpha1.ConditionResolvedRefs, metav1.ConditionTrue, v1alpha1.ReasonResolvedRefs, "")
	wantCondition(t, c, orphan, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonUnknownHost, "spec.hosts")
	wantCondition(t, c, dap, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantCondition(t, c, bad, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonInvalid, "spec.rules[0].to[0].operation")
}
