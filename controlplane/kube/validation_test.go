package kube

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// TestInvalidRejectedByAPIServer: the CRDs' OpenAPI schema and CEL rules
// refuse invalid objects with a message naming the field and the rule.
func TestInvalidRejectedByAPIServer(t *testing.T) {
	_, c := apiServer(t)
	ns := namespace(t, c, "invalid")
	om := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
	route := func(m v1alpha1.StringMatch, weights ...int32) v1alpha1.MetaRoute {
		r := v1alpha1.MetaRoute{Name: "r", Match: &v1alpha1.Match{Attributes: map[string]v1alpha1.StringMatch{"method": m}}}
		for _, w := range weights {
			r.Route = append(r.Route, v1alpha1.WeightedDestination{Destination: v1alpha1.Destination{Host: "h"}, Weight: ptr.To(w)})
		}
		return r
	}
	tests := []struct {
		name string
		obj  client.Object
		want []string // all in the error message
	}{
		{"port number out of range (OpenAPI)", &v1alpha1.ServiceEntry{ObjectMeta: om("range"), Spec: v1alpha1.ServiceEntrySpec{
			Hosts: []v1alpha1.Host{"h"}, Ports: []v1alpha1.ServicePort{{Number: 70000, Name: "dubbo", Protocol: "dubbo"}},
		}}, []string{"spec.ports[0].number", "65535"}},
		{"duplicate port names (CEL)", &v1alpha1.ServiceEntry{ObjectMeta: om("dup"), Spec: v1alpha1.ServiceEntrySpec{
			Hosts: []v1alpha1.Host{"h"}, Ports: []v1alpha1.ServicePort{{Number: 1, Name: "a", Protocol: "dubbo"}, {Number: 2, Name: "a", Protocol: "dubbo"}},
		}}, []string{"spec.ports", "port names must be unique"}},
		{"two kinds of match (CEL)", &v1alpha1.MetaRouter{ObjectMeta: om("match"), Spec: v1alpha1.MetaRouterSpec{
			Hosts: []v1alpha1.Host{"h"}, Routes: []v1alpha1.MetaRoute{route(v1alpha1.StringMatch{Exact: ptr.To("a"), Prefix: ptr.To("b")}, 100)},
		}}, []string{"spec.routes[0].match.attributes[method]", "at most one of exact, prefix and regex may be set"}},
		{"weights not adding up to 100 (CEL)", &v1alpha1.MetaRouter{ObjectMeta: om("weights"), Spec: v1alpha1.MetaRouterSpec{
			Hosts: []v1alpha1.Host{"h"}, Routes: []v1alpha1.MetaRoute{route(v1alpha1.StringMatch{}, 60, 30)},
		}}, []string{"spec.routes[0]", "100"}},
		{"zero duration (CEL)", &v1alpha1.DestinationPolicy{ObjectMeta: om("dur"), Spec: v1alpha1.DestinationPolicySpec{
			Host: "h", ConnectionPool: &v1alpha1.ConnectionPool{ConnectTimeout: ptr.To[v1alpha1.Duration]("0s")},
		}}, []string{"spec.connectionPool.connectTimeout", "must be a positive duration"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Create(context.Background(), tt.obj)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("create: %v, want an Invalid error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
