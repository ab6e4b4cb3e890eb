package kube

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/metamesh/metamesh/controlplane/translate"
	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// TestBuildRateLimitService: Aeraki's demo in Kubernetes. The rate-limit
// server is a Service whose port (grpc) is no meta-protocol's; it becomes
// a ServiceEntry port of its own (clusters, no listener) because a
// MetaRouter's globalRateLimit names it, and only then.
func TestBuildRateLimitService(t *testing.T) {
	l := greeter()
	l.services.Items = append(l.services.Items, corev1.Service{
		ObjectMeta: om("istio-system", "rate-limit-server"),
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 8080}, {Name: "grpc", Port: 8081}}},
	})
	l.slices.Items = append(l.slices.Items, discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "istio-system", Name: "rate-limit-server-abc", Labels: map[string]string{discoveryv1.LabelServiceName: "rate-limit-server"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}, {Name: ptr.To("grpc"), Port: ptr.To[int32](8081)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"198.18.9.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	})
	if n := len(build(l, "cluster.local").input.ServiceEntries); n != 1 {
		t.Fatalf("%d ServiceEntries with no limit naming the rate-limit server, want the greeter's alone", n)
	}

	const rls = "outbound|8081||rate-limit-server.istio-system.svc.cluster.local"
	l.aerakiRouters.Items = []aeraki.MetaRouter{{ObjectMeta: om("shop", "greeter"), Spec: aeraki.MetaRouterSpec{
		Hosts: []string{"greeter.shop.svc.cluster.local"},
		GlobalRateLimit: &aeraki.GlobalRateLimit{Domain: "production", RateLimitService: rls,
			Match:       aeraki.MetaRouteMatch{Attributes: map[string]aeraki.StringMatch{"method": {Exact: ptr.To("sayHello")}}},
			Descriptors: []aeraki.RateLimitDescriptor{{Property: "method", DescriptorKey: "method"}}},
	}}}
	in := build(l, "cluster.local").input
	var ports []v1alpha1.ServicePort
	for _, se := range in.ServiceEntries {
		if se.Name == "service:rate-limit-server" {
			ports = se.Spec.Ports
		}
	}
	if want := []v1alpha1.ServicePort{{Number: 8081, Name: "grpc", Protocol: "grpc"}}; !reflect.DeepEqual(ports, want) {
		t.Fatalf("rate-limit server's ServiceEntry ports %+v, want %+v", ports, want)
	}
	out := translate.Translate(in, translate.Options{})
	if c := out.Status["MetaRouter/shop/greeter"].Get(v1alpha1.ConditionAccepted); c == nil || c.Status != metav1.ConditionTrue {
		t.Fatalf("MetaRouter Accepted = %+v", c)
	}
	if got, want := endpointsOf(out, rls), []string{"198.18.9.1:8081"}; !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints of %s = %v, want %v", rls, got, want)
	}
	for _, l := range out.Resources.Listeners {
		if l.Name != "dubbo-20880" {
			t.Errorf("listener %s: the rate-limit service's port must get none", l.Name)
		}
	}
}
