// Package rls is the proxy's client of rate-limit services: Envoy's
// envoy.service.ratelimit.v3.RateLimitService API, used by global rate
// limits (docs/rate-limiting.md).
package rls

import (
	"context"
	"slices"
	"sync"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// Client is one pooled gRPC connection to the endpoints of one
// rate-limit service cluster. Its endpoints come from the proxy's config
// (SetAddrs) through a resolver of its own, so an endpoint change moves
// the connection's subchannels without a new connection; requests are
// spread over the endpoints round robin.
type Client struct {
	cluster  string
	resolver *manual.Resolver
	conn     *grpc.ClientConn
	stub     rlsv3.RateLimitServiceClient

	mu    sync.Mutex
	addrs []string
}

// New returns the client of cluster, with no endpoint yet: calls fail
// until SetAddrs gives it some. It connects on its first call.
func New(cluster string) (*Client, error) {
	r := manual.NewBuilderWithScheme("metamesh-rls")
	r.InitialState(resolver.State{})
	conn, err := grpc.NewClient("metamesh-rls:///"+cluster,
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	)
	if err != nil {
		return nil, err
	}
	return &Client{cluster: cluster, resolver: r, conn: conn, stub: rlsv3.NewRateLimitServiceClient(conn)}, nil
}

// Cluster is the name of the cluster the client calls.
func (c *Client) Cluster() string { return c.cluster }

// SetAddrs makes addrs (host:port) the service's endpoints, when they
// differ from the ones in force.
func (c *Client) SetAddrs(addrs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if slices.Equal(c.addrs, addrs) {
		return
	}
	c.addrs = slices.Clone(addrs)
	st := resolver.State{Addresses: make([]resolver.Address, len(addrs))}
	for i, a := range addrs {
		st.Addresses[i] = resolver.Address{Addr: a}
	}
	c.resolver.UpdateState(st)
}

// ShouldRateLimit asks the service about one request.
func (c *Client) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	return c.stub.ShouldRateLimit(ctx, req)
}

// Close closes the connection; calls in flight fail.
func (c *Client) Close() error { return c.conn.Close() }
