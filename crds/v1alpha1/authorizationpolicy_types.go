package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RootNamespace is the namespace whose AuthorizationPolicies apply to
// every service of the mesh (Istio's root namespace).
const RootNamespace = "metamesh-system"

// AuthorizationAction is what an AuthorizationPolicy does with the
// requests its rules match.
// +kubebuilder:validation:Enum=ALLOW;DENY;AUDIT
type AuthorizationAction string

// Authorization actions.
const (
	// ActionAllow: when any ALLOW policy applies to a service, a request
	// to it must match one of them.
	ActionAllow AuthorizationAction = "ALLOW"
	// ActionDeny refuses the requests it matches, before any ALLOW.
	ActionDeny AuthorizationAction = "DENY"
	// ActionAudit counts the requests it matches; it decides nothing.
	ActionAudit AuthorizationAction = "AUDIT"
)

// AuthorizationPolicySpec says which requests to the services it protects
// are allowed, denied or audited (docs/authorization.md).
type AuthorizationPolicySpec struct {
	// Hosts are the services the policy protects; empty means every
	// service of the policy's namespace, or of the mesh for a policy in
	// the root namespace (metamesh-system).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	Hosts []Host `json:"hosts,omitempty"`

	// Protocols narrows the policy to the services' ports of these
	// protocols (dubbo, thrift, redis, an ApplicationProtocol name);
	// empty means every protocol.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	Protocols []Name `json:"protocols,omitempty"`

	// Action is what the policy does with the requests its rules match
	// (default ALLOW).
	// +optional
	Action AuthorizationAction `json:"action,omitempty"`

	// Rules match requests: a request matches the policy when it matches
	// any rule. A policy without rules matches nothing (an ALLOW policy
	// without rules therefore allows nothing); a rule without from and to
	// matches every request.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Rules []AuthorizationRule `json:"rules,omitempty"`

	// DryRun evaluates the policy without enforcing it: what it would
	// have denied is logged and counted
	// (metamesh_authz_dry_run_denied_total), and served.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
}

// AuthorizationRule matches a request when any of its sources and any of
// its operations match (an absent list matches all).
type AuthorizationRule struct {
	// From are the callers the rule matches.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	From []AuthorizationSource `json:"from,omitempty"`

	// To are the requests the rule matches.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	To []AuthorizationOperation `json:"to,omitempty"`
}

// AuthorizationSource matches the caller. Every field set must match
// (AND); a list matches when any entry does. Principals and namespaces
// match strings as Istio does: "abc" exactly, "abc*" by prefix, "*abc"
// by suffix, "*" any non-empty value.
//
// A caller's principal and namespace come from the SPIFFE ID of the
// client certificate it presents on a listener terminating mutual TLS
// (docs/authorization.md). A caller without one has none: principals and
// namespaces never match it, notPrincipals and notNamespaces always do.
type AuthorizationSource struct {
	// Principals are callers' identities (SPIFFE IDs without the
	// "spiffe://" scheme: "cluster.local/ns/batch/sa/reporter").
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Principals []string `json:"principals,omitempty"`

	// NotPrincipals are identities the caller must not have.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	NotPrincipals []string `json:"notPrincipals,omitempty"`

	// Namespaces are the callers' namespaces.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Namespaces []string `json:"namespaces,omitempty"`

	// NotNamespaces are namespaces the caller must not be in.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	NotNamespaces []string `json:"notNamespaces,omitempty"`

	// IPBlocks are the caller's addresses: IPs or CIDR ranges, matched
	// against the client connection's source address.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	IPBlocks []string `json:"ipBlocks,omitempty"`

	// NotIPBlocks are addresses the caller must not have.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	NotIPBlocks []string `json:"notIpBlocks,omitempty"`
}

// AuthorizationOperation matches the request. Every field set must match
// (AND); services and methods match strings as Istio does ("abc", "abc*",
// "*abc", "*").
type AuthorizationOperation struct {
	// Services are the services the request names (its `service`
	// attribute, or the service its listener serves).
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Services []string `json:"services,omitempty"`

	// NotServices are services the request must not name.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	NotServices []string `json:"notServices,omitempty"`

	// Methods are the request's `method` attribute (Dubbo and Thrift
	// methods); for Redis match `command` in attributes.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	Methods []string `json:"methods,omitempty"`

	// NotMethods are methods the request must not call.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	NotMethods []string `json:"notMethods,omitempty"`

	// Attributes must all match, with the MetaRouter's matchers.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Attributes map[string]StringMatch `json:"attributes,omitempty"`

	// NotAttributes must all not match: an attribute that is absent, or
	// whose value the matcher refuses.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	NotAttributes map[string]StringMatch `json:"notAttributes,omitempty"`
}

// AuthorizationPolicy allows, denies or audits the requests to services by
// caller and by request (docs/authorization.md).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=metamesh
// +kubebuilder:printcolumn:name="Action",type=string,JSONPath=`.spec.action`
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the policy.
	// +required
	Spec AuthorizationPolicySpec `json:"spec"`

	// Status is what metamesh observed about this object.
	// +optional
	Status Status `json:"status,omitempty"`
}

// AuthorizationPolicyList is a list of AuthorizationPolicy.
// +kubebuilder:object:root=true
type AuthorizationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthorizationPolicy `json:"items"`
}
