package kube

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/metamesh/metamesh/controlplane/translate"
	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

func om(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

// greeter is a Dubbo Service with two ready pods (v1, v2), one not ready,
// and a port metamesh ignores.
func greeter() *lists {
	l := &lists{}
	l.services.Items = []corev1.Service{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "greeter", Annotations: map[string]string{HostsAnnotation: "org.example.Greeter, org.example.Greeter ,"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "tcp-dubbo", Port: 20880},
			{Name: "http-admin", Port: 8080},
		}},
	}, {
		ObjectMeta: om("shop", "web"),
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}}
	ep := func(ip, pod string, ready bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod}}
	}
	l.slices.Items = []discoveryv1.EndpointSlice{{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "shop", Name: "greeter-abc", Labels: map[string]string{discoveryv1.LabelServiceName: "greeter"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("tcp-dubbo"), Port: ptr.To[int32](20881)}, {Name: ptr.To("http-admin"), Port: ptr.To[int32](8081)}},
		Endpoints:   []discoveryv1.Endpoint{ep("10.0.0.2", "greeter-v2", true), ep("10.0.0.1", "greeter-v1", true), ep("10.0.0.3", "greeter-v3", false)},
	}}
	for _, p := range []struct{ name, version string }{{"greeter-v1", "v1"}, {"greeter-v2", "v2"}} {
		l.pods.Items = append(l.pods.Items, corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: p.name, Labels: map[string]string{"app": "greeter", "version": p.version}},
			Spec: corev1.PodSpec{ServiceAccountName: "greeter-" + p.version}})
	}
	return l
}

func TestBuildService(t *testing.T) {
	s := build(greeter(), "cluster.local")
	if n := len(s.input.ServiceEntries); n != 1 {
		t.Fatalf("%d ServiceEntries, want 1 (web has no meta-protocol port)", n)
	}
	got := s.input.ServiceEntries[0]
	ports := map[string]v1alpha1.PortNumber{"tcp-dubbo": 20881}
	want := &v1alpha1.ServiceEntry{
		ObjectMeta: om("shop", "service:greeter"),
		Spec: v1alpha1.ServiceEntrySpec{
			Hosts: []v1alpha1.Host{"greeter.shop.svc.cluster.local", "org.example.Greeter"},
			Ports: []v1alpha1.ServicePort{{Number: 20880, Name: "tcp-dubbo", Protocol: "dubbo"}},
			Endpoints: []v1alpha1.Endpoint{
				{Address: "10.0.0.1", Ports: ports, Labels: map[string]string{"app": "greeter", "version": "v1"}, ServiceAccount: "greeter-v1"},
				{Address: "10.0.0.2", Ports: ports, Labels: map[string]string{"app": "greeter", "version": "v2"}, ServiceAccount: "greeter-v2"},
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ServiceEntry:\n got %+v\nwant %+v", got, want)
	}
	if len(s.origins) != 0 || len(s.refused) != 0 {
		t.Errorf("a Service has no status: origins %v, refused %v", s.origins, s.refused)
	}
}

// TestBuildTranslates checks the path from a Service and a DestinationPolicy
// to the xDS endpoints of a subset: pods are selected by their labels.
func TestBuildTranslates(t *testing.T) {
	l := greeter()
	l.destinationPolicies.Items = []v1alpha1.DestinationPolicy{{
		ObjectMeta: om("shop", "greeter"),
		Spec: v1alpha1.DestinationPolicySpec{Host: "greeter.shop.svc.cluster.local",
			Subsets: []v1alpha1.Subset{{Name: "v2", Labels: map[string]string{"version": "v2"}}}},
	}}
	out := translate.Translate(build(l, "cluster.local").input, translate.Options{})
	name := translate.ClusterName(20880, "v2", "greeter.shop.svc.cluster.local")
	addrs := endpointsOf(out, name)
	if want := []string{"10.0.0.2:20881"}; !reflect.DeepEqual(addrs, want) {
		t.Errorf("endpoints of %s = %v, want %v", name, addrs, want)
	}
	if c := out.Status["DestinationPolicy/shop/greeter"].Get(v1alpha1.ConditionAccepted); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("DestinationPolicy Accepted = %+v", c)
	}
}

func TestBuildRefusesAndConverts(t *testing.T) {
	l := &lists{}
	route := []v1alpha1.WeightedDestination{{Destination: v1alpha1.Destination{Host: "h"}}}
	l.metaRouters.Items = []v1alpha1.MetaRouter{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "same", Generation: 3, ResourceVersion: "9", UID: "u"},
		Spec:       v1alpha1.MetaRouterSpec{Hosts: []v1alpha1.Host{"h"}, Routes: []v1alpha1.MetaRoute{{Name: "r", Route: route}}},
		Status:     v1alpha1.Status{ObservedGeneration: 2},
	}}
	l.aerakiRouters.Items = []aeraki.MetaRouter{
		{ObjectMeta: om("a", "same"), Spec: aeraki.MetaRouterSpec{Hosts: []string{"h2"}}},
		{ObjectMeta: om("a", "global"), Spec: aeraki.MetaRouterSpec{Hosts: []string{"h3"}, GlobalRateLimit: &aeraki.GlobalRateLimit{Domain: "production"}}},
		{ObjectMeta: om("a", "gw"), Spec: aeraki.MetaRouterSpec{Hosts: []string{"h5"}, Gateways: []string{"g"}}},
		{ObjectMeta: om("a", "ok"), Spec: aeraki.MetaRouterSpec{Hosts: []string{"h4"}}},
	}
	l.aerakiProtocols.Items = []aeraki.ApplicationProtocol{{ObjectMeta: om("a", "rpc"), Spec: aeraki.ApplicationProtocolSpec{Protocol: "my-rpc", Codec: "aeraki.meta_protocol.codec.dubbo"}}}
	s := build(l, "cluster.local")

	var names []string
	for _, mr := range s.input.MetaRouters {
		names = append(names, mr.Namespace+"/"+mr.Name)
	}
	if want := []string{"a/gw", "a/ok", "a/same"}; !reflect.DeepEqual(names, want) {
		t.Errorf("MetaRouters %v, want %v", names, want)
	}
	mr := s.input.MetaRouters[2]
	if mr.ResourceVersion != "" || mr.UID != "" || mr.Generation != 3 || mr.Status.ObservedGeneration != 0 {
		t.Errorf("metadata/status not reduced to what translation reads: %+v %+v", mr.ObjectMeta, mr.Status)
	}
	mrAeraki := objectID{kind: "MetaRouter.metaprotocol.aeraki.io", namespace: "a", name: "same"}
	if got := s.refused[mrAeraki].Get(v1alpha1.ConditionAccepted); got == nil || got.Reason != v1alpha1.ReasonConflict ||
		!strings.Contains(got.Message, "already defined by MetaRouter.metamesh.io a/same") {
		t.Errorf("Aeraki MetaRouter with a metamesh one's name: %+v", got)
	}
	global := objectID{kind: "MetaRouter.metaprotocol.aeraki.io", namespace: "a", name: "global"}
	if got := s.refused[global].Get(v1alpha1.ConditionAccepted); got == nil || got.Reason != v1alpha1.ReasonInvalid || !strings.Contains(got.Message, "spec.globalRateLimit") {
		t.Errorf("Aeraki MetaRouter with globalRateLimit: %+v", got)
	}
	if gw := s.input.MetaRouters[0]; !reflect.DeepEqual(gw.Spec.Gateways, v1alpha1.Gateways{"g"}) {
		t.Errorf("Aeraki MetaRouter with gateways converted to %+v", gw.Spec)
	}
	ap := objectID{kind: "ApplicationProtocol.metaprotocol.aeraki.io", namespace: "a", name: "rpc"}
	if got := s.origins["ApplicationProtocol//my-rpc"]; got != ap {
		t.Errorf("origin of the converted ApplicationProtocol = %v, want %v", got, ap)
	}
	if got := s.origins["MetaRouter/a/same"]; got.kind != "MetaRouter.metamesh.io" {
		t.Errorf("origin of MetaRouter/a/same = %v", got)
	}
}
