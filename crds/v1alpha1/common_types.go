package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// PortNumber is a TCP port number.
// +kubebuilder:validation:Minimum=1
// +kubebuilder:validation:Maximum=65535
type PortNumber int32

// Duration is a Go duration string such as "500ms", "2s" or "1m30s". It must
// be positive: a zero timeout or interval is always a mistake here, and an
// absent field means "use the default".
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be a positive duration"
type Duration string

// Name is a lower-case DNS label, used for port names, subset names, codec
// and protocol names.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type Name string

// Host is a service name as clients address it: a DNS name, or for Dubbo
// the interface name (org.apache.dubbo.samples.api.GreetingsService).
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=253
type Host string

// StringMatch matches the value of a request attribute. At most one of exact,
// prefix and regex may be set; an empty match ({}) only asks that the
// attribute is present.
// +kubebuilder:validation:XValidation:rule="[has(self.exact), has(self.prefix), has(self.regex)].filter(x, x).size() <= 1",message="at most one of exact, prefix and regex may be set"
type StringMatch struct {
	// Exact matches a value equal to this string (case-sensitive).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Exact *string `json:"exact,omitempty"`

	// Prefix matches a value that starts with this string.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Prefix *string `json:"prefix,omitempty"`

	// Regex is an RE2 expression that must match the whole value.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Regex *string `json:"regex,omitempty"`
}

// Match selects requests by their attributes (see each codec's README for
// the attributes it exposes).
// +kubebuilder:validation:XValidation:rule="!has(self.attributes) || self.attributes.all(k, size(k) > 0)",message="attribute names must not be empty",fieldPath=".attributes"
type Match struct {
	// Attributes maps an attribute name to how its value must match. Every
	// entry must match (AND). An empty or absent map matches every request.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	Attributes map[string]StringMatch `json:"attributes,omitempty"`
}

// Destination names the service, and optionally the subset and port, that a
// request is sent to.
type Destination struct {
	// Host is a service host as declared in a ServiceEntry's hosts (or a
	// Kubernetes Service's name).
	// +required
	Host Host `json:"host"`

	// Subset names a subset in the host's DestinationPolicy; empty means
	// every endpoint of the host.
	// +optional
	Subset Name `json:"subset,omitempty"`

	// Port selects one of the host's service ports; it may be left out when
	// the host has a single port.
	// +optional
	Port *PortNumber `json:"port,omitempty"`
}

// KeyValue is one attribute to set on a request or a response.
type KeyValue struct {
	// Key is the attribute name (a Dubbo attachment, a THeader header).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Key string `json:"key"`

	// Value is the value to set; it may be empty.
	// +required
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// TokenBucket configures a token-bucket rate limiter: a request takes one
// token, and is refused when none is left.
type TokenBucket struct {
	// MaxTokens is how many tokens the bucket holds, and holds at start.
	// +required
	// +kubebuilder:validation:Minimum=1
	MaxTokens int32 `json:"maxTokens"`

	// TokensPerFill is how many tokens each fill adds (default 1).
	// +optional
	// +kubebuilder:validation:Minimum=1
	TokensPerFill *int32 `json:"tokensPerFill,omitempty"`

	// FillInterval is how often tokens are added.
	// +required
	FillInterval Duration `json:"fillInterval"`
}

// Status is what metamesh reports about an object it has read.
type Status struct {
	// ObservedGeneration is the metadata.generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions are the latest observations: Accepted and ResolvedRefs,
	// and RegistryReachable on a ServiceEntry whose endpoints come from
	// Dubbo registries.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types every object reports.
const (
	// ConditionAccepted is True when the object is valid and in force.
	ConditionAccepted = "Accepted"
	// ConditionResolvedRefs is True when every host and subset it names exists.
	ConditionResolvedRefs = "ResolvedRefs"
	// ConditionRegistryReachable, on a ServiceEntry that takes its
	// endpoints from Dubbo registries (--registry), is True while they are
	// watched and False while one is unreachable and its last known
	// providers stay in force; it is removed when the ServiceEntry takes
	// none.
	ConditionRegistryReachable = "RegistryReachable"
)

// Condition reasons.
const (
	ReasonAccepted      = "Accepted"
	ReasonInvalid       = "Invalid"
	ReasonConflict      = "Conflict"
	ReasonResolvedRefs  = "ResolvedRefs"
	ReasonUnknownHost   = "UnknownHost"
	ReasonUnknownSubset = "UnknownSubset"
	ReasonUnknownCodec  = "UnknownCodec"

	ReasonRegistryReachable   = "RegistryReachable"
	ReasonRegistryUnreachable = "RegistryUnreachable"
)
