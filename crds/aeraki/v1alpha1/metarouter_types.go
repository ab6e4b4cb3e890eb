package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metamesh "github.com/metamesh/metamesh/crds/v1alpha1"
)

// StringMatch matches an attribute value; Aeraki's is a oneof of the three,
// and an empty one checks presence.
type StringMatch struct {
	// Exact matches an equal value.
	// +optional
	Exact *string `json:"exact,omitempty"`
	// Prefix matches a value starting with this string.
	// +optional
	Prefix *string `json:"prefix,omitempty"`
	// Regex is an RE2 expression for the whole value.
	// +optional
	Regex *string `json:"regex,omitempty"`
}

// MetaRouteMatch selects requests by attributes; all must match.
type MetaRouteMatch struct {
	// Attributes maps an attribute name to how its value must match.
	// +optional
	Attributes map[string]StringMatch `json:"attributes,omitempty"`
}

// PortSelector picks a service port by number.
type PortSelector struct {
	// Number is the port number.
	// +optional
	Number uint32 `json:"number,omitempty"`
}

// Destination names a service, a subset of it, and a port.
type Destination struct {
	// Host is the service name.
	// +required
	Host string `json:"host"`
	// Subset is a subset of a DestinationRule for the host.
	// +optional
	Subset string `json:"subset,omitempty"`
	// Port is needed only when the service has more than one port.
	// +optional
	Port *PortSelector `json:"port,omitempty"`
}

// MetaRouteDestination is a destination and its share of a route's traffic.
type MetaRouteDestination struct {
	// Destination is where requests go.
	// +required
	Destination Destination `json:"destination"`
	// Weight is the share, 0-100; 0 or absent on a lone destination means 100.
	// +optional
	Weight uint32 `json:"weight,omitempty"`
}

// Percent is a percentage from 0.0 to 100.0.
type Percent struct {
	// Value is the percentage.
	// +optional
	Value float64 `json:"value,omitempty"`
}

// KeyValue is an attribute to set.
type KeyValue struct {
	// Key is the attribute name.
	// +required
	Key string `json:"key"`
	// Value is its value.
	// +required
	Value string `json:"value"`
}

// MetaRoute is one routing rule.
type MetaRoute struct {
	// Name labels the route; Aeraki uses it for debugging only.
	// +optional
	Name string `json:"name,omitempty"`
	// Match selects the requests; absent matches all.
	// +optional
	Match *MetaRouteMatch `json:"match,omitempty"`
	// Route lists weighted destinations.
	// +optional
	Route []MetaRouteDestination `json:"route,omitempty"`
	// Mirror receives a copy of each request.
	// +optional
	Mirror *Destination `json:"mirror,omitempty"`
	// MirrorPercentage is the share mirrored; absent means 100%.
	// +optional
	MirrorPercentage *Percent `json:"mirrorPercentage,omitempty"`
	// RequestMutation sets attributes on the request.
	// +optional
	RequestMutation []KeyValue `json:"requestMutation,omitempty"`
	// ResponseMutation sets attributes on the response.
	// +optional
	ResponseMutation []KeyValue `json:"responseMutation,omitempty"`
}

// TokenBucket is a token-bucket limiter.
type TokenBucket struct {
	// MaxTokens is the bucket's size and initial content.
	// +optional
	MaxTokens uint32 `json:"maxTokens,omitempty"`
	// TokensPerFill is added each fill; absent means 1.
	// +optional
	TokensPerFill *uint32 `json:"tokensPerFill,omitempty"`
	// FillInterval is the fill period, a duration string such as "60s".
	// +required
	FillInterval string `json:"fillInterval"`
}

// LocalRateLimitCondition is a bucket for one class of requests.
type LocalRateLimitCondition struct {
	// Match selects the requests.
	// +required
	Match MetaRouteMatch `json:"match"`
	// TokenBucket is their bucket.
	// +required
	TokenBucket TokenBucket `json:"tokenBucket"`
}

// LocalRateLimit limits requests per proxy.
type LocalRateLimit struct {
	// TokenBucket is the default bucket.
	// +optional
	TokenBucket *TokenBucket `json:"tokenBucket,omitempty"`
	// Conditions are buckets for classes of requests; the first match wins.
	// +optional
	Conditions []LocalRateLimitCondition `json:"conditions,omitempty"`
}

// RateLimitDescriptor maps a request property to a rate-limit-service
// descriptor key.
type RateLimitDescriptor struct {
	// Property is the request attribute.
	// +required
	Property string `json:"property"`
	// DescriptorKey is the key sent to the rate limit service.
	// +required
	DescriptorKey string `json:"descriptorKey"`
}

// GlobalRateLimit asks an external rate limit service (Envoy's RLS API).
type GlobalRateLimit struct {
	// Match selects the requests that are limited.
	// +required
	Match MetaRouteMatch `json:"match"`
	// Domain is the rate limit domain.
	// +required
	Domain string `json:"domain"`
	// RequestTimeout bounds the call to the service (Aeraki's default 20ms).
	// +optional
	RequestTimeout string `json:"requestTimeout,omitempty"`
	// DenyOnFail refuses requests when the service can't be reached.
	// +optional
	DenyOnFail bool `json:"denyOnFail,omitempty"`
	// RateLimitService is the cluster name of the service.
	// +required
	RateLimitService string `json:"rateLimitService"`
	// Descriptors say what is sent to the service.
	// +required
	Descriptors []RateLimitDescriptor `json:"descriptors"`
}

// MetaRouterSpec is Aeraki's MetaRouter spec.
type MetaRouterSpec struct {
	// Hosts are the services routed; Aeraki honours only the first.
	// +optional
	Hosts []string `json:"hosts,omitempty"`
	// Gateways are the gateways and sidecars the routes apply to.
	// +optional
	Gateways []string `json:"gateways,omitempty"`
	// Routes are tried in order; the first match wins.
	// +optional
	Routes []MetaRoute `json:"routes,omitempty"`
	// LocalRateLimit limits requests per proxy.
	// +optional
	LocalRateLimit *LocalRateLimit `json:"localRateLimit,omitempty"`
	// GlobalRateLimit limits requests through a rate limit service.
	// +optional
	GlobalRateLimit *GlobalRateLimit `json:"globalRateLimit,omitempty"`
	// ExportTo lists the namespaces that see this MetaRouter ("*" all, "." own,
	// or names), as metamesh's MetaRouter's exportTo.
	// +optional
	ExportTo []string `json:"exportTo,omitempty"`
}

// MetaRouter is Aeraki's MetaRouter.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=aeraki-io;metaprotocol-aeraki-io
type MetaRouter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is Aeraki's MetaRouter spec.
	// +optional
	Spec MetaRouterSpec `json:"spec,omitempty"`

	// Status is what metamesh observed about this object.
	// +optional
	Status metamesh.Status `json:"status,omitempty"`
}

// MetaRouterList is a list of MetaRouter.
// +kubebuilder:object:root=true
type MetaRouterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetaRouter `json:"items"`
}
