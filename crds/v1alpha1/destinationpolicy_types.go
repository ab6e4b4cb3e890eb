package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// LoadBalancerPolicy is how a proxy picks an endpoint.
// +kubebuilder:validation:Enum=ROUND_ROBIN;LEAST_REQUEST;RANDOM;CONSISTENT_HASH
type LoadBalancerPolicy string

// Load-balancing policies.
const (
	RoundRobin     LoadBalancerPolicy = "ROUND_ROBIN"
	LeastRequest   LoadBalancerPolicy = "LEAST_REQUEST"
	Random         LoadBalancerPolicy = "RANDOM"
	ConsistentHash LoadBalancerPolicy = "CONSISTENT_HASH"
)

// Subset is a named group of a host's endpoints, selected by labels.
type Subset struct {
	// Name is how routes refer to the subset.
	// +required
	Name Name `json:"name"`

	// Labels select the endpoints whose labels include all of these; empty
	// selects every endpoint.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
}

// LoadBalancer chooses the load-balancing policy.
// +kubebuilder:validation:XValidation:rule="self.policy == 'CONSISTENT_HASH' ? (has(self.hashKey) && size(self.hashKey) > 0) : !has(self.hashKey)",message="hashKey is required with policy CONSISTENT_HASH and not allowed with any other policy",fieldPath=".hashKey"
type LoadBalancer struct {
	// Policy is ROUND_ROBIN, LEAST_REQUEST, RANDOM or CONSISTENT_HASH.
	// +required
	Policy LoadBalancerPolicy `json:"policy"`

	// HashKey is the request attribute CONSISTENT_HASH hashes on (for
	// example user-id); requests without it are spread at random.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	HashKey string `json:"hashKey,omitempty"`
}

// ConnectionPool bounds the connections and queued requests to each host.
type ConnectionPool struct {
	// MaxConnections is the most connections to one endpoint.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxConnections *int32 `json:"maxConnections,omitempty"`

	// MaxPendingRequests is the most requests waiting for a connection.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`

	// ConnectTimeout bounds a TCP connect to an endpoint.
	// +optional
	ConnectTimeout *Duration `json:"connectTimeout,omitempty"`

	// IdleTimeout closes an upstream connection idle this long.
	// +optional
	IdleTimeout *Duration `json:"idleTimeout,omitempty"`
}

// OutlierDetection ejects endpoints that keep failing.
type OutlierDetection struct {
	// ConsecutiveErrors is how many errors in a row eject an endpoint.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ConsecutiveErrors *int32 `json:"consecutiveErrors,omitempty"`

	// Interval is how long an endpoint must stay in for one of its past
	// ejections to be forgiven (each ejection lasts baseEjectionTime times
	// the ejections not yet forgiven).
	// +optional
	Interval *Duration `json:"interval,omitempty"`

	// BaseEjectionTime is how long a first ejection lasts; each further
	// ejection of the same endpoint lasts that much longer.
	// +optional
	BaseEjectionTime *Duration `json:"baseEjectionTime,omitempty"`

	// MaxEjectionPercent caps the share of a host's endpoints ejected at once.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`
}

// RedisReadPolicy says which nodes of a Redis Cluster serve read-only
// commands (Envoy's names).
// +kubebuilder:validation:Enum=MASTER;PREFER_MASTER;REPLICA;PREFER_REPLICA;ANY
type RedisReadPolicy string

// Read policies.
const (
	ReadMaster        RedisReadPolicy = "MASTER"
	ReadPreferMaster  RedisReadPolicy = "PREFER_MASTER"
	ReadReplica       RedisReadPolicy = "REPLICA"
	ReadPreferReplica RedisReadPolicy = "PREFER_REPLICA"
	ReadAny           RedisReadPolicy = "ANY"
)

// RedisCluster makes the host's endpoints the seed nodes of one Redis
// Cluster: the proxy learns the slot map from them and routes each
// command to the node serving its key's slot (docs/redis-cluster.md).
// +kubebuilder:validation:XValidation:rule="!has(self.refreshInterval) || duration(self.refreshInterval) >= duration('100ms')",message="refreshInterval must be at least 100ms",fieldPath=".refreshInterval"
type RedisCluster struct {
	// ReadPolicy says where read-only commands go: MASTER (default),
	// PREFER_MASTER, REPLICA, PREFER_REPLICA or ANY.
	// +optional
	ReadPolicy RedisReadPolicy `json:"readPolicy,omitempty"`

	// RefreshInterval is how often the slot map is read again (default
	// 10s, at least 100ms); MOVED and connection failures also refresh it.
	// +optional
	RefreshInterval *Duration `json:"refreshInterval,omitempty"`
}

// DestinationPolicySpec says how to reach one host: its subsets, load
// balancing, connection limits and outlier detection.
// +kubebuilder:validation:XValidation:rule="!has(self.listenerTls) || !has(self.mtls) || self.mtls.mode == 'DISABLE'",message="mtls with a mode other than DISABLE is not allowed with listenerTls",fieldPath=".mtls"
type DestinationPolicySpec struct {
	// Host is the service host the policy applies to.
	// +required
	Host Host `json:"host"`

	// Subsets are named groups of the host's endpoints.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(s, self.exists_one(t, t.name == s.name))",message="subset names must be unique"
	Subsets []Subset `json:"subsets,omitempty"`

	// LoadBalancer chooses how an endpoint is picked (default ROUND_ROBIN).
	// +optional
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// ConnectionPool bounds connections and queued requests.
	// +optional
	ConnectionPool *ConnectionPool `json:"connectionPool,omitempty"`

	// OutlierDetection ejects failing endpoints.
	// +optional
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// TLS is how the proxy speaks TLS to the host's endpoints.
	// +optional
	TLS *ClientTLS `json:"tls,omitempty"`

	// ListenerTLS is how the listener of the host's ports terminates TLS.
	// +optional
	ListenerTLS *ListenerTLS `json:"listenerTls,omitempty"`

	// MTLS is mutual TLS between the proxies calling the host and its
	// own sidecars; not with listenerTls unless its mode is DISABLE.
	// +optional
	MTLS *MTLS `json:"mtls,omitempty"`

	// RedisCluster makes the host's endpoints the seed nodes of a Redis
	// Cluster (Redis ports only).
	// +optional
	RedisCluster *RedisCluster `json:"redisCluster,omitempty"`

	// ExportTo lists the namespaces whose proxies see this policy ("." its
	// own, "*" all, or names; default "*"). See docs/scoping.md.
	// +optional
	// +listType=set
	ExportTo ExportTo `json:"exportTo,omitempty"`
}

// DestinationPolicy declares a host's subsets and how to reach its endpoints.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories=metamesh
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.host`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type DestinationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired policy.
	// +required
	Spec DestinationPolicySpec `json:"spec"`

	// Status is what metamesh observed about this object.
	// +optional
	Status Status `json:"status,omitempty"`
}

// DestinationPolicyList is a list of DestinationPolicy.
// +kubebuilder:object:root=true
type DestinationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []DestinationPolicy `json:"items"`
}
