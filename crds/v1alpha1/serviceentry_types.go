package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ServicePort is a port the service listens on, and the protocol spoken there.
type ServicePort struct {
	// Number is the port the proxy listens on for this service.
	// +required
	Number PortNumber `json:"number"`

	// Name identifies the port; endpoints map it to their own port numbers.
	// +required
	Name Name `json:"name"`

	// Protocol is the codec name: dubbo, thrift, redis, or an
	// ApplicationProtocol's name. grpc, http2 and tcp are ports metamesh
	// doesn't proxy (no listener), for a global rate limit's service.
	// +required
	Protocol Name `json:"protocol"`
}

// Endpoint is one instance of the service.
type Endpoint struct {
	// Address is the instance's IP address or DNS name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Address string `json:"address"`

	// Ports maps a service port name to the instance's port for it; a
	// service port not listed here is reached on the service port's number.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Ports map[string]PortNumber `json:"ports,omitempty"`

	// Labels are the instance's labels, which DestinationPolicy subsets select on.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// Weight is the instance's share of load-balanced traffic relative to
	// its peers (default 1).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Weight *int32 `json:"weight,omitempty"`

	// ServiceAccount is the service account the instance runs as (Istio's
	// WorkloadEntry field): under mutual TLS between proxies, callers
	// expect it to present spiffe://<trust-domain>/ns/<the
	// ServiceEntry's namespace>/sa/<it>, beside subjectAltNames. In
	// Kubernetes, a Service's endpoints get their Pod's.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	ServiceAccount string `json:"serviceAccount,omitempty"`
}

// ServiceEntrySpec declares a service and its endpoints (file mode; in
// Kubernetes, Services and EndpointSlices do this).
// +kubebuilder:validation:XValidation:rule="!has(self.endpoints) || self.endpoints.all(e, !has(e.ports) || e.ports.all(k, self.ports.exists(p, p.name == k)))",message="endpoint ports must name a port in spec.ports"
type ServiceEntrySpec struct {
	// Hosts are the service's names; for Dubbo, the interface name.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Hosts []Host `json:"hosts"`

	// Addresses are the service's virtual IPs or CIDR ranges (Istio's
	// field): in mesh mode, a captured connection to one of them on a
	// service port is served by that port's protocol and routes, as is
	// one to an endpoint's address.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="self.all(a, isIP(a) || isCIDR(a))",message="addresses must be IP addresses or CIDR ranges"
	Addresses []string `json:"addresses,omitempty"`

	// Ports are the ports the service listens on.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(p, self.exists_one(q, q.name == p.name))",message="port names must be unique"
	// +kubebuilder:validation:XValidation:rule="self.all(p, self.exists_one(q, q.number == p.number))",message="port numbers must be unique"
	Ports []ServicePort `json:"ports"`

	// Endpoints are the service's instances.
	// +optional
	// +kubebuilder:validation:MaxItems=1024
	Endpoints []Endpoint `json:"endpoints,omitempty"`

	// SubjectAltNames are the identities the service's endpoints may
	// present under mutual TLS between proxies (Istio's field): SPIFFE
	// IDs, spiffe://<trust-domain>/ns/<namespace>/sa/<account>, beside
	// those of the endpoints' serviceAccount. Both empty: any identity
	// the mesh's root vouches for.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.all(s, s.startsWith('spiffe://'))",message="subjectAltNames must be SPIFFE IDs (spiffe://...)"
	SubjectAltNames []string `json:"subjectAltNames,omitempty"`

	// ExportTo lists the namespaces whose proxies see this service ("." its
	// own, "*" all, or names; default "*"). See docs/scoping.md.
	// +optional
	// +listType=set
	ExportTo ExportTo `json:"exportTo,omitempty"`
}

// ServiceEntry declares a service, its ports and protocols, and its endpoints.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=metamesh
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ServiceEntry struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired service.
	// +required
	Spec ServiceEntrySpec `json:"spec"`

	// Status is what metamesh observed about this object.
	// +optional
	Status Status `json:"status,omitempty"`
}

// ServiceEntryList is a list of ServiceEntry.
// +kubebuilder:object:root=true
type ServiceEntryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceEntry `json:"items"`
}
