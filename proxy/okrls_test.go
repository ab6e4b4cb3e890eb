package proxy

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
)

// okRateLimitService answers OK to every ShouldRateLimit and counts the
// calls: a global limit that never triggers, for benchmarks.
type okRateLimitService struct {
	rlsv3.UnimplementedRateLimitServiceServer
	addr  string
	calls atomic.Int64
}

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
	srv := grpc.NewServer()
	rlsv3.RegisterRateLimitServiceServer(srv, s)
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(srv.Stop)
	return s
}
