package translate

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// redisClusterMetadata carries a DestinationPolicy's redisCluster to the
// proxy as the cluster's filter metadata under xdsapi.RedisClusterKey:
// {readPolicy, refreshInterval} (docs/redis-cluster.md). nil without one.
func redisClusterMetadata(rc *v1alpha1.RedisCluster) *corev3.Metadata {
	if rc == nil {
		return nil
	}
	fields := map[string]*structpb.Value{}
	if rc.ReadPolicy != "" {
		fields["readPolicy"] = structpb.NewStringValue(string(rc.ReadPolicy))
	}
	if rc.RefreshInterval != nil {
		fields["refreshInterval"] = structpb.NewStringValue(string(*rc.RefreshInterval))
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{xdsapi.RedisClusterKey: {Fields: fields}}}
}
