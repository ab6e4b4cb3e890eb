package config

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/cluster"
)

// Redis Cluster defaults and bounds (docs/redis-cluster.md).
const (
	DefaultRedisRefresh = 10 * time.Second
	MinRedisRefresh     = 100 * time.Millisecond
)

var redisReadPolicies = map[string]bool{"MASTER": true, "PREFER_MASTER": true, "REPLICA": true, "PREFER_REPLICA": true, "ANY": true}

// redisCluster reads the cluster's xdsapi.RedisClusterKey filter metadata
// (nil without it); other metadata is left alone.
func redisCluster(md *corev3.Metadata, path string) (*cluster.RedisCluster, error) {
	st, ok := md.GetFilterMetadata()[xdsapi.RedisClusterKey]
	if !ok {
		return nil, nil
	}
	path += ".filter_metadata[" + xdsapi.RedisClusterKey + "]"
	rc := &cluster.RedisCluster{ReadPolicy: "MASTER", RefreshInterval: DefaultRedisRefresh}
	for k, v := range st.GetFields() {
		switch k {
		case "readPolicy":
			p := v.GetStringValue()
			if !redisReadPolicies[p] {
				return nil, fmt.Errorf("%s.readPolicy: %q is not MASTER, PREFER_MASTER, REPLICA, PREFER_REPLICA or ANY", path, p)
			}
			rc.ReadPolicy = p
		case "refreshInterval":
			d, err := time.ParseDuration(v.GetStringValue())
			if err != nil || d < MinRedisRefresh {
				return nil, fmt.Errorf("%s.refreshInterval: %q is not a duration of at least %v", path, v.GetStringValue(), MinRedisRefresh)
			}
			rc.RefreshInterval = d
		default:
			return nil, fmt.Errorf("%s: unknown field %q", path, k)
		}
	}
	return rc, nil
}
