// Package v1alpha1 reads Aeraki's metaprotocol.aeraki.io/v1alpha1 MetaRouter
// and ApplicationProtocol, field for field as Aeraki defines them, so an
// Aeraki user's files apply unchanged; ToMetamesh turns them into metamesh's
// own kinds, and names any field metamesh cannot honour.
//
// The CRDs generated from this package are for clusters without Aeraki: they
// have the same names as Aeraki's own and must not be installed beside them.
//
// +kubebuilder:object:generate=true
// +groupName=metaprotocol.aeraki.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is Aeraki's API group.
const GroupName = "metaprotocol.aeraki.io"

var (
	// SchemeGroupVersion is the group and version of this package's kinds.
	SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&MetaRouter{}, &MetaRouterList{},
		&ApplicationProtocol{}, &ApplicationProtocolList{},
	)
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
