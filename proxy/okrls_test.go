package proxy

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
)

// okRateLimitService answers OK to every ShouldRateLimit and counts the
// calls and the client connections open: a global limit that never
// triggers.
type okRateLimitService struct {
	rlsv3.UnimplementedRateLimitServiceServer
	addr  string
	calls atomic.Int64
	conns atomic.Int64 // client connections open
}

// TagConn, HandleConn, TagRPC and HandleRPC count the connections open
// (a grpc stats.Handler).
func (s *okRateLimitService) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

func (s *okRateLimitService) HandleConn(_ context.Context, st stats.ConnStats) {
	switch st.(type) {
	case *stats.ConnBegin:
		s.conns.Add(1)
	case *stats.ConnEnd:
		s.conns.Add(-1)
	}
}

func (s *okRateLimitService) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	return ctx
}

func (s *okRateLimitService) HandleRPC(context.Context, stats.RPCStats) {}

func (s *okRateLimitService) ShouldRateLimit(context.Context, *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	s.calls.Add(1)
	return &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}, nil
}

func startOKRateLimitService(tb testing.TB) *okRateLimitService {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &okRateLimitService{addr: l.Addr().String()}
	srv := grpc.NewServer(grpc.StatsHandler(s))
	rlsv3.RegisterRateLimitServiceServer(srv, s)
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(srv.Stop)
	return s
}

// TestGlobalRateLimitClosedAtShutdown: the proxy's connection to a
// rate-limit service is closed when the proxy shuts down.
func TestGlobalRateLimitClosedAtShutdown(t *testing.T) {
	rls := startOKRateLimitService(t)
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}, RLS: []string{rls.addr},
		// The first ask dials the service: a loaded machine may take
		// longer than the default timeout (then the call passes unasked).
		Global: "domain: d, rate_limit_service: rls, request_timeout: 10s, descriptors: [{property: method, descriptor_key: method}]"})
	if status, value := dial(t, addr).call(1, svc, "m"); status != 20 || !strings.HasPrefix(value, "v1|m|") {
		t.Fatalf("call: %d %q", status, value)
	}
	if rls.calls.Load() != 1 || rls.conns.Load() != 1 {
		t.Fatalf("%d calls on %d connections, want 1 on 1", rls.calls.Load(), rls.conns.Load())
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rls.conns.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the rate-limit service's connection is still open after the proxy's shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
