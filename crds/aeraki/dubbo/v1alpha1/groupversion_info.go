// Package v1alpha1 reads Aeraki's dubbo.aeraki.io/v1alpha1
// DubboAuthorizationPolicy, field for field as Aeraki defines it, so an
// Aeraki user's files apply unchanged; ToMetamesh turns it into metamesh's
// AuthorizationPolicy (docs/authorization.md) and names any field metamesh
// cannot honour.
//
// The CRD generated from this package is for clusters without Aeraki: it
// has the same name as Aeraki's own and must not be installed beside it.
//
// +kubebuilder:object:generate=true
// +groupName=dubbo.aeraki.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is Aeraki's Dubbo API group.
const GroupName = "dubbo.aeraki.io"

// KindDubboAuthorizationPolicy is the kind, as written in a manifest.
const KindDubboAuthorizationPolicy = "DubboAuthorizationPolicy"

var (
	// SchemeGroupVersion is the group and version of this package's kinds.
	SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion, &DubboAuthorizationPolicy{}, &DubboAuthorizationPolicyList{})
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
