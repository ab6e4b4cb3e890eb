package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metamesh "github.com/metamesh/metamesh/crds/v1alpha1"
)

// DubboAuthorizationPolicySpec is Aeraki's DubboAuthorizationPolicy spec.
type DubboAuthorizationPolicySpec struct {
	// Rules match requests; a policy without rules matches none.
	// +optional
	Rules []Rule `json:"rules,omitempty"`
	// Action is ALLOW (the default) or DENY.
	// +optional
	// +kubebuilder:validation:Enum=ALLOW;DENY
	Action string `json:"action,omitempty"`
}

// Rule matches a request from any of its sources doing any of its
// operations.
type Rule struct {
	// +optional
	From []From `json:"from,omitempty"`
	// +optional
	To []To `json:"to,omitempty"`
}

// From wraps a source, as in Aeraki.
type From struct {
	// +optional
	Source *Source `json:"source,omitempty"`
}

// To wraps an operation, as in Aeraki.
type To struct {
	// +optional
	Operation *Operation `json:"operation,omitempty"`
}

// Source is the caller's identity.
type Source struct {
	// +optional
	Principals []string `json:"principals,omitempty"`
	// +optional
	NotPrincipals []string `json:"notPrincipals,omitempty"`
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
	// +optional
	NotNamespaces []string `json:"notNamespaces,omitempty"`
}

// Operation is the Dubbo interface and method called.
type Operation struct {
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`
	// +optional
	NotInterfaces []string `json:"notInterfaces,omitempty"`
	// +optional
	Methods []string `json:"methods,omitempty"`
	// +optional
	NotMethods []string `json:"notMethods,omitempty"`
}

// DubboAuthorizationPolicy is Aeraki's authorization policy for Dubbo
// services.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=aeraki-io;dubbo-aeraki-io,shortName=dap
type DubboAuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is Aeraki's DubboAuthorizationPolicy spec.
	// +optional
	Spec DubboAuthorizationPolicySpec `json:"spec,omitempty"`

	// Status is what metamesh observed about this object.
	// +optional
	Status metamesh.Status `json:"status,omitempty"`
}

// DubboAuthorizationPolicyList is a list of DubboAuthorizationPolicy.
// +kubebuilder:object:root=true
type DubboAuthorizationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DubboAuthorizationPolicy `json:"items"`
}
