package kube

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// hostsOf lists the virtual hosts of a view with their first route's name.
func hostsOf(r *xdsapi.Resources) []string {
	var out []string
	for _, rc := range r.Routes {
		for _, vh := range rc.VirtualHosts {
			out = append(out, vh.Domains[0]+" "+vh.Routes[0].Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestScoping: on a real API server, a Service's networking.istio.io/exportTo
// annotation, a ServiceEntry's and a MetaRouter's exportTo and a Sidecar
// decide what each namespace's proxies see; a second Sidecar in a
// namespace and a MetaRouter whose exports overlap another's are refused
// on the objects, and an invalid Sidecar is refused by the API server.
func TestScoping(t *testing.T) {
	cfg, c := apiServer(t)
	ctx := context.Background()
	a, b, other := namespace(t, c, "scope-a"), namespace(t, c, "scope-b"), namespace(t, c, "scope-c")
	createService(t, c, a, "hidden", 20930, "dubbo")
	hidden := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: a, Name: "hidden"}, hidden); err != nil {
		t.Fatal(err)
	}
	hidden.Annotations = map[string]string{ExportToAnnotation: "."}
	if err := c.Update(ctx, hidden); err != nil {
		t.Fatal(err)
	}
	createService(t, c, b, "public", 20930, "dubbo")
	hiddenHost, publicHost := "hidden."+a+".svc.cluster.local", "public."+b+".svc.cluster.local"
	partner := &v1alpha1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "partner"}, Spec: v1alpha1.ServiceEntrySpec{
		Hosts: []v1alpha1.Host{"partner.example"}, ExportTo: v1alpha1.ExportTo{b},
		Ports: []v1alpha1.ServicePort{{Number: 20930, Name: "dubbo", Protocol: "dubbo"}}, Endpoints: []v1alpha1.Endpoint{{Address: "10.9.9.9"}},
	}}
	own := dubboRouter(a, "public-for-a", publicHost, "")
	own.Spec.ExportTo = v1alpha1.ExportTo{"."}
	sidecar := &v1alpha1.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: b, Name: "default"},
		Spec: v1alpha1.SidecarSpec{Egress: []v1alpha1.SidecarEgress{{Hosts: []string{"./*", other + "/*"}}}}}
	for _, o := range []client.Object{partner, own, sidecar} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// Created after the first, so they are the newer ones.
	everywhere := dubboRouter(b, "public-everywhere", publicHost, "")
	second := &v1alpha1.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: b, Name: "second"},
		Spec: v1alpha1.SidecarSpec{Egress: []v1alpha1.SidecarEgress{{Hosts: []string{"*/*"}}}}}
	for _, o := range []client.Object{everywhere, second} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	bad := &v1alpha1.Sidecar{ObjectMeta: metav1.ObjectMeta{Namespace: a, Name: "bad"},
		Spec: v1alpha1.SidecarSpec{Egress: []v1alpha1.SidecarEgress{{Hosts: []string{"no-namespace"}}}}}
	if err := c.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), "spec.egress[0].hosts[0]") {
		t.Errorf("create a Sidecar with host %q: %v, want refused at spec.egress[0].hosts[0]", bad.Spec.Egress[0].Hosts[0], err)
	}

	r := startSource(t, cfg, Options{Namespaces: []string{a, b, other}})
	wantCondition(t, c, sidecar, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantCondition(t, c, second, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonConflict, "already has Sidecar default")
	wantCondition(t, c, own, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	wantCondition(t, c, everywhere, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonConflict, "exported to namespaces "+a)

	views := func(want map[string][]string) func() (bool, string) {
		return func() (bool, string) {
			out := r.output()
			if out == nil {
				return false, "nothing published"
			}
			var why []string
			for ns, hosts := range want {
				if got := hostsOf(out.Views.For(ns)); !slices.Equal(got, hosts) {
					why = append(why, fmt.Sprintf("%q sees %q, want %q", ns, got, hosts))
				}
			}
			return len(why) == 0, strings.Join(why, "; ")
		}
	}
	eventually(t, "each namespace's view", views(map[string][]string{
		a:  {hiddenHost + " default", publicHost + " all"},
		b:  {"partner.example default", publicHost + " default"},
		"": {publicHost + " default"},
	}))

	// The annotation exports hidden to all: every namespace but b (its
	// Sidecar) sees it.
	hidden.Annotations[ExportToAnnotation] = "*"
	if err := c.Update(ctx, hidden); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hidden exported to all", views(map[string][]string{
		b:  {"partner.example default", publicHost + " default"},
		"": {hiddenHost + " default", publicHost + " default"},
	}))
}
