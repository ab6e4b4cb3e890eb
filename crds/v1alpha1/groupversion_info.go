// Package v1alpha1 holds metamesh's configuration kinds (group metamesh.io):
// ServiceEntry, DestinationPolicy, MetaRouter, ApplicationProtocol, Sidecar
// and AuthorizationPolicy.
//
// The same types serve Kubernetes (as CRDs, validated by the API server from
// the kubebuilder markers and CEL rules below) and file mode (validated by
// each kind's Validate method, which applies the same rules offline).
//
// +kubebuilder:object:generate=true
// +groupName=metamesh.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of every kind in this package.
const GroupName = "metamesh.io"

var (
	// SchemeGroupVersion is the group and version of this package's kinds.
	SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Kind names, as written in a manifest's kind field.
const (
	KindServiceEntry        = "ServiceEntry"
	KindDestinationPolicy   = "DestinationPolicy"
	KindMetaRouter          = "MetaRouter"
	KindApplicationProtocol = "ApplicationProtocol"
	KindSidecar             = "Sidecar"
	KindAuthorizationPolicy = "AuthorizationPolicy"
)

// Resource returns the group-qualified resource for a plural resource name.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&ServiceEntry{}, &ServiceEntryList{},
		&DestinationPolicy{}, &DestinationPolicyList{},
		&MetaRouter{}, &MetaRouterList{},
		&ApplicationProtocol{}, &ApplicationProtocolList{},
		&Sidecar{}, &SidecarList{},
		&AuthorizationPolicy{}, &AuthorizationPolicyList{},
	)
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
