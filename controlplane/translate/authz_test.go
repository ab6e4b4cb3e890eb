package translate

import (
	"cmp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// TestRootNamespace: a policy in the root namespace protects every
// namespace's services; RootNamespace moves the root (istio-system for a
// mesh that keeps Aeraki's policies), and the default root is then a
// namespace like any other.
func TestRootNamespace(t *testing.T) {
	se := func(ns, host string) *v1alpha1.ServiceEntry {
		return &v1alpha1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: host}, Spec: v1alpha1.ServiceEntrySpec{
			Hosts: []v1alpha1.Host{v1alpha1.Host(host)}, Ports: []v1alpha1.ServicePort{{Number: 20880, Name: "dubbo", Protocol: "dubbo"}},
			Endpoints: []v1alpha1.Endpoint{{Address: "10.0.0.1"}}}}
	}
	policy := func(ns string) *v1alpha1.AuthorizationPolicy {
		return &v1alpha1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny-all"},
			Spec: v1alpha1.AuthorizationPolicySpec{Action: v1alpha1.ActionDeny, Hosts: []v1alpha1.Host{"com.example.Orders"}}}
	}
	in := func(ns string) *Input {
		return &Input{ServiceEntries: []*v1alpha1.ServiceEntry{se("shop", "com.example.Orders")}, AuthorizationPolicies: []*v1alpha1.AuthorizationPolicy{policy(ns)}}
	}
	protects := func(out *Output, ns string) bool {
		c := out.Status[Key(v1alpha1.KindAuthorizationPolicy, ns, "deny-all")].Get("ResolvedRefs")
		return c != nil && c.Status == metav1.ConditionTrue
	}
	for _, tc := range []struct {
		policyNS, root string
		want           bool
	}{
		{"metamesh-system", "", true},
		{"istio-system", "", false},
		{"istio-system", "istio-system", true},
		{"metamesh-system", "istio-system", false},
	} {
		out := Translate(in(tc.policyNS), Options{KnownCodec: known, RootNamespace: tc.root})
		if got := protects(out, tc.policyNS); got != tc.want {
			t.Errorf("policy in %s, root %q: protects another namespace's service = %v, want %v (%v)",
				tc.policyNS, tc.root, got, tc.want, out.Status[Key(v1alpha1.KindAuthorizationPolicy, tc.policyNS, "deny-all")])
		}
		if !tc.want {
			msg := out.Status[Key(v1alpha1.KindAuthorizationPolicy, tc.policyNS, "deny-all")].Get("ResolvedRefs").Message
			if root := cmp.Or(tc.root, "metamesh-system"); !strings.Contains(msg, root) {
				t.Errorf("the refusal %q does not name the root namespace %s", msg, root)
			}
		}
	}
}
