package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RetryOn is a failure a request may be retried on.
// +kubebuilder:validation:Enum=connect-failure;reset;unavailable
type RetryOn string

// Retryable failures.
const (
	// RetryOnConnectFailure: the upstream connection could not be made, so
	// the request surely never reached the server.
	RetryOnConnectFailure RetryOn = "connect-failure"
	// RetryOnReset: the upstream connection closed before the reply.
	RetryOnReset RetryOn = "reset"
	// RetryOnUnavailable: the server answered that it is overloaded or
	// unavailable (Dubbo SERVER_THREADPOOL_EXHAUSTED and the like).
	RetryOnUnavailable RetryOn = "unavailable"
)

// WeightedDestination is one destination of a route and its share of traffic.
type WeightedDestination struct {
	// Destination is where the request goes.
	// +required
	Destination Destination `json:"destination"`

	// Weight is the percentage of the route's requests sent here. When a
	// route has more than one destination, either every destination has a
	// weight and they add up to 100, or none has and traffic is split evenly.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Weight *int32 `json:"weight,omitempty"`
}

// Retries says when and how often a failed request is sent again.
type Retries struct {
	// Attempts is how many retries follow the first try (0 = none).
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	Attempts int32 `json:"attempts"`

	// PerTryTimeout bounds each try; the route's timeout bounds them all.
	// +optional
	PerTryTimeout *Duration `json:"perTryTimeout,omitempty"`

	// RetryOn lists the failures that are retried; empty means
	// connect-failure only, the one case where the server surely did not
	// see the request.
	// +optional
	// +listType=set
	RetryOn []RetryOn `json:"retryOn,omitempty"`
}

// MetaRoute is one routing rule: requests that match go to its destinations.
// +kubebuilder:validation:XValidation:rule="!has(self.mirrorPercentage) || has(self.mirror)",message="mirrorPercentage needs mirror",fieldPath=".mirror"
// +kubebuilder:validation:XValidation:rule="!has(self.mirrorExcludeReads) || !self.mirrorExcludeReads || has(self.mirror)",message="mirrorExcludeReads needs mirror",fieldPath=".mirror"
type MetaRoute struct {
	// Name identifies the route in metrics, logs and error replies.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Match selects the requests the route applies to; absent matches all.
	// +optional
	Match *Match `json:"match,omitempty"`

	// Route lists the destinations and their weights.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.size() <= 1 || self.all(d, !has(d.weight)) || (self.all(d, has(d.weight)) && self.map(d, d.weight).sum() == 100)",message="weights must be set on every destination or on none, and add up to 100"
	Route []WeightedDestination `json:"route"`

	// Timeout bounds a request end to end, retries included.
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`

	// Retries retries failed requests.
	// +optional
	Retries *Retries `json:"retries,omitempty"`

	// Mirror receives a copy of each request, fire and forget: its reply
	// is discarded.
	// +optional
	Mirror *Destination `json:"mirror,omitempty"`

	// MirrorPercentage is the percentage of requests mirrored (default 100).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MirrorPercentage *int32 `json:"mirrorPercentage,omitempty"`

	// MirrorExcludeReads leaves requests whose readonly attribute is
	// "true" (Redis reads) out of the mirror: only writes are copied, as
	// when a new cluster is being filled during a migration.
	// +optional
	MirrorExcludeReads bool `json:"mirrorExcludeReads,omitempty"`

	// RequestMutation sets attributes on the forwarded request.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	RequestMutation []KeyValue `json:"requestMutation,omitempty"`

	// ResponseMutation sets attributes on the reply.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	ResponseMutation []KeyValue `json:"responseMutation,omitempty"`

	// Fault injects delays and errors into the route's requests, for
	// chaos testing.
	// +optional
	Fault *Fault `json:"fault,omitempty"`
}

// Fault injects faults into a route's requests: a delay before routing,
// an error reply instead of routing, or both (an aborted request is not
// delayed).
// +kubebuilder:validation:XValidation:rule="has(self.delay) || has(self.abort)",message="set delay, abort or both"
type Fault struct {
	// Delay holds a share of the requests before they are routed.
	// +optional
	Delay *FaultDelay `json:"delay,omitempty"`

	// Abort answers a share of the requests with an error.
	// +optional
	Abort *FaultAbort `json:"abort,omitempty"`
}

// FaultDelay holds a share of the requests for a fixed time.
type FaultDelay struct {
	// FixedDelay is how long a delayed request waits.
	// +required
	FixedDelay Duration `json:"fixedDelay"`

	// Percentage is the share of requests delayed (default 100).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percentage *int32 `json:"percentage,omitempty"`
}

// FaultAbort answers a share of the requests with an error.
type FaultAbort struct {
	// Status is the codec's native error status: a Dubbo response status
	// (such as 80 SERVER_ERROR) or a Thrift TApplicationException type
	// (such as 6 INTERNAL_ERROR). Absent, or with a codec that has no
	// numbered errors (Redis), the reply is the codec's "no healthy
	// upstream" error.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Status *int32 `json:"status,omitempty"`

	// Percentage is the share of requests aborted (default 100).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percentage *int32 `json:"percentage,omitempty"`
}

// RateLimitCondition gives one class of requests a bucket of its own.
type RateLimitCondition struct {
	// Match selects the requests the bucket applies to.
	// +required
	Match Match `json:"match"`

	// TokenBucket is the bucket for matching requests.
	// +required
	TokenBucket TokenBucket `json:"tokenBucket"`
}

// LocalRateLimit limits requests per proxy with token buckets. A request
// takes from the bucket of the first condition it matches, else from the
// default bucket; with no default bucket, unmatched requests are not limited.
// +kubebuilder:validation:XValidation:rule="has(self.tokenBucket) || (has(self.conditions) && size(self.conditions) > 0)",message="set tokenBucket, conditions or both"
type LocalRateLimit struct {
	// TokenBucket is the default bucket.
	// +optional
	TokenBucket *TokenBucket `json:"tokenBucket,omitempty"`

	// Conditions are buckets for classes of requests; the first match wins.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	Conditions []RateLimitCondition `json:"conditions,omitempty"`
}

// RateLimitDescriptor is one entry of the descriptor sent to a rate-limit
// service: key DescriptorKey, valued by the request's attribute Property.
type RateLimitDescriptor struct {
	// Property is the request attribute giving the entry's value.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Property string `json:"property"`

	// DescriptorKey is the entry's key.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	DescriptorKey string `json:"descriptorKey"`
}

// GlobalRateLimit asks a rate-limit service that all proxies share
// (Envoy's envoy.service.ratelimit.v3.RateLimitService) about each
// matching request. The fields are Aeraki's (docs/rate-limiting.md).
type GlobalRateLimit struct {
	// Domain is the rate-limit domain sent with each call.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Domain string `json:"domain"`

	// Match selects the requests that ask the service; absent, all do.
	// +optional
	Match *Match `json:"match,omitempty"`

	// RateLimitService is the service's cluster: outbound|PORT|SUBSET|HOST
	// (Istio's form) or HOST:PORT, with HOST and PORT those of a
	// ServiceEntry.
	// +required
	// +kubebuilder:validation:MaxLength=400
	// +kubebuilder:validation:Pattern=`^(outbound\|[0-9]{1,5}\|[^|]*\|[^|:]+|[^|:]+:[0-9]{1,5})$`
	RateLimitService string `json:"rateLimitService"`

	// RequestTimeout bounds each call (default 20ms).
	// +optional
	RequestTimeout *Duration `json:"requestTimeout,omitempty"`

	// DenyOnFail refuses a request when the call fails or times out
	// (default: the request goes on).
	// +optional
	DenyOnFail bool `json:"denyOnFail,omitempty"`

	// Descriptors are the entries of the one descriptor sent, in order.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Descriptors []RateLimitDescriptor `json:"descriptors"`
}

// MetaRouterSpec holds the L7 routes for a service.
type MetaRouterSpec struct {
	// Hosts are the services whose requests these routes apply to.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	Hosts []Host `json:"hosts"`

	// Routes are tried in order; the first that matches wins. A request no
	// route matches is answered with the protocol's "no route" error. With
	// no routes at all, requests go to every endpoint of the host, as with
	// no MetaRouter (so a MetaRouter may carry only a rate limit).
	// +optional
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:XValidation:rule="self.all(r, self.exists_one(s, s.name == r.name))",message="route names must be unique"
	Routes []MetaRoute `json:"routes,omitempty"`

	// LocalRateLimit limits requests per proxy.
	// +optional
	LocalRateLimit *LocalRateLimit `json:"localRateLimit,omitempty"`

	// GlobalRateLimit limits requests across all proxies through a
	// rate-limit service (docs/rate-limiting.md); applied after the local
	// limit.
	// +optional
	GlobalRateLimit *GlobalRateLimit `json:"globalRateLimit,omitempty"`

	// ExportTo lists the namespaces whose proxies see this router ("." its
	// own, "*" all, or names; default "*"). See docs/scoping.md.
	// +optional
	// +listType=set
	ExportTo ExportTo `json:"exportTo,omitempty"`

	// Gateways are the proxies the routes apply to, as Istio's
	// VirtualService gateways: "namespace/name" the proxies serving that
	// gateway (--gateway), a bare name the gateway of that name in the
	// MetaRouter's namespace, "mesh" the sidecars. Empty means mesh only.
	// See docs/gateways.md.
	// +optional
	Gateways Gateways `json:"gateways,omitempty"`
}

// MetaRouter routes the requests of one or more services by their attributes.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=metamesh
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.hosts`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetaRouter struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired routing.
	// +required
	Spec MetaRouterSpec `json:"spec"`

	// Status is what metamesh observed about this object.
	// +optional
	Status Status `json:"status,omitempty"`
}

// MetaRouterList is a list of MetaRouter.
// +kubebuilder:object:root=true
type MetaRouterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetaRouter `json:"items"`
}
