// Package xdsapi is the contract between metamesh's control plane and its
// proxies: the MetaProtocolProxy filter config (metaprotocol.proto, metamesh's
// own xDS type) and Resources, the set of Envoy v3 resources the translator
// produces and the proxy compiles. Both sides import it; neither imports the
// other.
package xdsapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// FilterName is the name of the network filter carrying MetaProtocolProxy.
const FilterName = "metamesh.meta_protocol_proxy"

// GlobalRateLimitName keys a virtual host's GlobalRateLimit in its
// typed_per_filter_config.
const GlobalRateLimitName = "metamesh.global_rate_limit"

// RedisClusterKey names a cluster's filter metadata that makes it a Redis
// Cluster: {"readPolicy": "MASTER"…, "refreshInterval": "10s"}
// (docs/redis-cluster.md).
const RedisClusterKey = "metamesh.redis_cluster"

// Resources is one complete set of xDS resources, by type. Its messages
// are read-only once handed to a Builder: a later build reuses what it
// made from a message it sees again (the same pointer) without looking
// at it (see Builder).
type Resources struct {
	Listeners []*listenerv3.Listener
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	Routes    []*routev3.RouteConfiguration
	// Version names this set in /config_dump: an xDS version_info, or a
	// content hash (see Hash) for config read from files.
	Version string
}

// Hash is a short digest of the resources' content, the same for the same
// resources in the same order whatever process computes it.
func (r *Resources) Hash() string {
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for _, list := range [][]proto.Message{msgs(r.Listeners), msgs(r.Clusters), msgs(r.Endpoints), msgs(r.Routes)} {
		for _, m := range list {
			b, _ := opts.Marshal(m) // a validated generated message always marshals
			_, _ = h.Write(b)
		}
		_, _ = h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func msgs[T proto.Message](list []T) []proto.Message {
	out := make([]proto.Message, len(list))
	for i, m := range list {
		out[i] = m
	}
	return out
}

// Add files one resource under its type.
func (r *Resources) Add(m proto.Message) error {
	switch v := m.(type) {
	case *listenerv3.Listener:
		r.Listeners = append(r.Listeners, v)
	case *clusterv3.Cluster:
		r.Clusters = append(r.Clusters, v)
	case *endpointv3.ClusterLoadAssignment:
		r.Endpoints = append(r.Endpoints, v)
	case *routev3.RouteConfiguration:
		r.Routes = append(r.Routes, v)
	default:
		return fmt.Errorf("resource type %s is not one a proxy accepts", m.ProtoReflect().Descriptor().FullName())
	}
	return nil
}

// LoadFile reads a bootstrap file: YAML or JSON with a top-level
// "resources" list, each entry an xDS resource with its "@type", as a
// DiscoveryResponse carries them.
func LoadFile(path string) (*Resources, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	res, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// Parse decodes bootstrap YAML or JSON (see LoadFile).
func Parse(data []byte) (*Resources, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Resources []json.RawMessage `json:"resources"`
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	res := &Resources{}
	for i, raw := range doc.Resources {
		var a anypb.Any
		if err := protojson.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		if err := res.Add(m); err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
	}
	return res, nil
}
