package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ExportTo lists the namespaces whose proxies see an object, as Istio's
// exportTo does: "." its own namespace, "*" every namespace, or namespace
// names. Empty (the default) is "*". "*" can't be combined with other values.
// +kubebuilder:validation:MaxItems=64
// +kubebuilder:validation:items:MaxLength=63
// +kubebuilder:validation:items:Pattern=`^(\*|\.|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$`
// +kubebuilder:validation:XValidation:rule="!self.exists(e, e == '*') || size(self) == 1",message="\"*\" exports to every namespace and can't be combined with other values"
type ExportTo []string

// Export values with a meaning of their own.
const (
	// ExportAll exports to every namespace.
	ExportAll = "*"
	// ExportOwn exports to the object's own namespace.
	ExportOwn = "."
)

// Gateways lists the proxies an object applies to: "mesh" (the
// sidecars), "namespace/name" (the proxies serving that gateway) or a
// bare gateway name in the object's namespace. Empty is "mesh".
// +listType=set
// +kubebuilder:validation:MaxItems=32
// +kubebuilder:validation:items:MaxLength=317
// +kubebuilder:validation:items:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
type Gateways []string

// GatewayMesh in Gateways means the sidecars.
const GatewayMesh = "mesh"

// SidecarEgress is what the proxies of a namespace may call.
type SidecarEgress struct {
	// Hosts are "namespace/host": namespace is a namespace name, "." the
	// Sidecar's own or "*" any; host is a host, "*" any, or "*.suffix"
	// any host ending in ".suffix". A host is seen when one entry matches
	// it and the namespace of its ServiceEntry (or Service), and it is
	// exported to the Sidecar's namespace.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=317
	// +kubebuilder:validation:items:Pattern=`^(\*|\.|[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(\*|(\*\.)?[^*/]+)$`
	Hosts []string `json:"hosts"`
}

// SidecarSpec limits what the proxies of the Sidecar's namespace receive.
type SidecarSpec struct {
	// Egress lists the hosts the namespace's proxies may call: the union
	// of every entry's hosts.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Egress []SidecarEgress `json:"egress"`
}

// Sidecar scopes the proxies of its namespace to the hosts they call (one
// per namespace; it has no workloadSelector). A namespace without one sees
// every host exported to it. See docs/scoping.md.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=metamesh
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Sidecar struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired scope.
	// +required
	Spec SidecarSpec `json:"spec"`

	// Status is what metamesh observed about this object.
	// +optional
	Status Status `json:"status,omitempty"`
}

// SidecarList is a list of Sidecar.
// +kubebuilder:object:root=true
type SidecarList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Sidecar `json:"items"`
}
