package translate

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// ClusterName is the Istio-style name of a service's cluster on a port,
// for one subset ("" for all endpoints): outbound|PORT|SUBSET|HOST.
func ClusterName(port int32, subset, host string) string {
	return fmt.Sprintf("outbound|%d|%s|%s", port, subset, host)
}

// ListenerName names the listener (and its route configuration) of a port.
func ListenerName(protocol string, port int32) string { return fmt.Sprintf("%s-%d", protocol, port) }

// emit writes the resources of the whole mesh and of each view (see
// build): per port a listener and a route configuration with one virtual
// host per service; per service port a cluster for all endpoints and one
// per subset, each with its endpoints.
func (t *translation) emit() {
	full := t.selectAll()
	t.out.Resources = t.build(full)
	t.out.Views = t.views(full)
	t.conditions()
}

// listener is port p's, serving svcs (those of p the view sees).
func (t *translation) listener(p *port, svcs []*service, name string) *listenerv3.Listener {
	ref := t.codecs[p.protocol]
	cfg := &xdsapi.MetaProtocolProxy{Codec: ref.codec, CodecConfig: ref.config, RouteConfigName: name, StatPrefix: name, AccessLog: t.opts.AccessLog,
		CaptureDestinations: captureDestinations(p, svcs), Authorization: t.authorization(p.protocol, svcs)}
	if onePerPort[p.protocol] {
		cfg.DefaultService = p.services[0].host
	}
	any, err := anypb.New(cfg)
	if err != nil {
		panic(fmt.Sprintf("translate: marshal MetaProtocolProxy: %v", err)) // a generated message always marshals
	}
	filters := []*listenerv3.Filter{{
		Name:       xdsapi.FilterName,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: any},
	}}
	chains := []*listenerv3.FilterChain{{Filters: filters}}
	switch {
	case p.tls != nil:
		chains[0].TransportSocket = listenerTLS(p.tls)
	case p.mtls != v1alpha1.MTLSDisable:
		chains = mtlsChains(p.mtls, filters)
	}
	var bind *wrapperspb.BoolValue
	if t.opts.CaptureOnly {
		bind = wrapperspb.Bool(false)
	}
	return &listenerv3.Listener{
		Name:       name,
		BindToPort: bind,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: t.opts.ListenAddress, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p.number)},
		}}},
		FilterChains: chains,
	}
}

// clusters are svc's with the policy in force: for each port, proxied or
// plain, one for all endpoints and one per subset. A port's endpoints are
// built once and shared by the assignments of its subsets.
func (t *translation) clusters(svc *service) clusterSet {
	var res clusterSet
	ports := svc.ports
	if len(svc.plain) > 0 {
		ports = slices.Concat(svc.ports, svc.plain)
	}
	for i, sp := range ports {
		subsets := []v1alpha1.Subset{{Name: ""}}
		if svc.policy != nil {
			subsets = append(subsets, svc.policy.Spec.Subsets...)
		}
		lbs := lbEndpoints(svc, sp)
		for _, ss := range subsets {
			name := ClusterName(int32(sp.Number), string(ss.Name), svc.host)
			c := t.cluster(svc, name)
			if p := t.ports[int32(sp.Number)]; p != nil && i < len(svc.ports) {
				c.TransportSocketMatches = t.meshSocketMatches(svc, p.mtls)
			}
			res.clusters = append(res.clusters, c)
			res.endpoints = append(res.endpoints, assignment(svc, lbs, name, ss.Labels))
		}
	}
	return res
}

var lbPolicies = map[v1alpha1.LoadBalancerPolicy]clusterv3.Cluster_LbPolicy{
	v1alpha1.RoundRobin:     clusterv3.Cluster_ROUND_ROBIN,
	v1alpha1.LeastRequest:   clusterv3.Cluster_LEAST_REQUEST,
	v1alpha1.Random:         clusterv3.Cluster_RANDOM,
	v1alpha1.ConsistentHash: clusterv3.Cluster_RING_HASH,
}

func (t *translation) cluster(svc *service, name string) *clusterv3.Cluster {
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			EdsConfig:   &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
			ServiceName: name,
		},
		ConnectTimeout: durationpb.New(time.Second),
	}
	if svc.policy == nil {
		return c
	}
	spec := svc.policy.Spec
	c.TransportSocket = clusterTLS(spec.TLS, svc.host)
	c.Metadata = redisClusterMetadata(spec.RedisCluster)
	if lb := spec.LoadBalancer; lb != nil {
		c.LbPolicy = lbPolicies[lb.Policy]
	}
	if od := spec.OutlierDetection; od != nil {
		c.OutlierDetection = &clusterv3.OutlierDetection{
			Interval:         duration(od.Interval),
			BaseEjectionTime: duration(od.BaseEjectionTime),
		}
		if od.ConsecutiveErrors != nil {
			c.OutlierDetection.Consecutive_5Xx = wrapperspb.UInt32(uint32(*od.ConsecutiveErrors))
		}
		if od.MaxEjectionPercent != nil {
			c.OutlierDetection.MaxEjectionPercent = wrapperspb.UInt32(uint32(*od.MaxEjectionPercent))
		}
	}
	if cp := spec.ConnectionPool; cp != nil {
		if cp.ConnectTimeout != nil {
			if d, err := time.ParseDuration(string(*cp.ConnectTimeout)); err == nil && d > 0 {
				c.ConnectTimeout = durationpb.New(d)
			}
		}
		if cp.MaxConnections != nil || cp.MaxPendingRequests != nil {
			th := &clusterv3.CircuitBreakers_Thresholds{}
			if cp.MaxConnections != nil {
				th.MaxConnections = wrapperspb.UInt32(uint32(*cp.MaxConnections))
			}
			if cp.MaxPendingRequests != nil {
				// Requests waiting for their replies: the proxy queues
				// none waiting for a connection, so this is max_requests.
				th.MaxRequests = wrapperspb.UInt32(uint32(*cp.MaxPendingRequests))
			}
			c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{th}}
		}
	}
	return c
}

// lbEndpoints are the endpoints of svc on port sp, in
// svc.entry.Spec.Endpoints' order, with their labels as metadata (visible
// in /config_dump).
func lbEndpoints(svc *service, sp v1alpha1.ServicePort) []*endpointv3.LbEndpoint {
	lbs := make([]*endpointv3.LbEndpoint, 0, len(svc.entry.Spec.Endpoints))
	for _, ep := range svc.entry.Spec.Endpoints {
		portNum := uint32(sp.Number)
		if n, ok := ep.Ports[string(sp.Name)]; ok {
			portNum = uint32(n)
		}
		lb := &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: ep.Address, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: portNum},
				}}},
			}},
		}
		if ep.Weight != nil {
			lb.LoadBalancingWeight = wrapperspb.UInt32(uint32(*ep.Weight))
		}
		if len(ep.Labels) > 0 {
			lb.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
			if s := labelStruct(ep.Labels); s != nil {
				lb.Metadata.FilterMetadata["metamesh"] = s
			}
			if m := meshEndpoint(ep.Labels); m != nil {
				lb.Metadata.FilterMetadata[TransportSocketMatch] = m
			}
		}
		lbs = append(lbs, lb)
	}
	return lbs
}

// labelStruct is labels as a Struct of strings, or nil if one is not
// UTF-8 (which protobuf can't carry).
func labelStruct(labels map[string]string) *structpb.Struct {
	fields := make(map[string]*structpb.Value, len(labels))
	for k, v := range labels {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil
		}
		fields[k] = structpb.NewStringValue(v)
	}
	return &structpb.Struct{Fields: fields}
}

// assignment is cluster's: those of lbs (svc's endpoints on one port)
// whose labels include want.
func assignment(svc *service, lbs []*endpointv3.LbEndpoint, cluster string, want map[string]string) *endpointv3.ClusterLoadAssignment {
	var in []*endpointv3.LbEndpoint
	for i, ep := range svc.entry.Spec.Endpoints {
		if hasLabels(ep.Labels, want) {
			in = append(in, lbs[i])
		}
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	if len(in) > 0 {
		cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: in}}
	}
	return cla
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
