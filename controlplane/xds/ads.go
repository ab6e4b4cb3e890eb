package xds

import (
	"crypto/tls"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/delta/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// ads is the AggregatedDiscoveryService on go-control-plane's state-of-
// the-world and delta stream handlers. (go-control-plane's pkg/server/v3
// bundles the same handlers with every other xDS service, and with them a
// dependency on its ratelimit module that metamesh does not need.)
type ads struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	sotw  sotw.Server
	delta delta.Server
}

// StreamAggregatedResources serves state-of-the-world ADS.
func (a ads) StreamAggregatedResources(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return a.sotw.StreamHandler(s, resourcev3.AnyType)
}

// DeltaAggregatedResources serves delta (incremental) ADS.
func (a ads) DeltaAggregatedResources(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	return a.delta.DeltaStreamHandler(s, resourcev3.AnyType)
}

// GRPCOptions are the options of the gRPC server ADS runs on: TLS (nil:
// plaintext) and keepalives. Proxies ping every 30 s (allowed here, where
// gRPC's default refuses pings more often than every 5 min), and a proxy
// that stops answering pings is dropped within 40 s, so its node state
// does not linger.
func GRPCOptions(tlsCfg *tls.Config) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 15 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	return opts
}
