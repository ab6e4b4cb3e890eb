package config

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

func TestRedisClusterMetadata(t *testing.T) {
	md := func(fields map[string]any) *corev3.Metadata {
		st, err := structpb.NewStruct(fields)
		if err != nil {
			t.Fatal(err)
		}
		return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{xdsapi.RedisClusterKey: st}}
	}
	if rc, err := redisCluster(nil, "c"); rc != nil || err != nil {
		t.Errorf("no metadata: %v, %v", rc, err)
	}
	rc, err := redisCluster(md(map[string]any{}), "c")
	if err != nil || rc.ReadPolicy != "MASTER" || rc.RefreshInterval != DefaultRedisRefresh {
		t.Errorf("defaults: %+v, %v", rc, err)
	}
	rc, err = redisCluster(md(map[string]any{"readPolicy": "PREFER_REPLICA", "refreshInterval": "250ms"}), "c")
	if err != nil || rc.ReadPolicy != "PREFER_REPLICA" || rc.RefreshInterval != 250*time.Millisecond {
		t.Errorf("set: %+v, %v", rc, err)
	}
	for _, bad := range []map[string]any{{"readPolicy": "SLAVE"}, {"refreshInterval": "50ms"}, {"refreshInterval": "soon"}, {"seeds": "x"}} {
		if _, err := redisCluster(md(bad), "c"); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
