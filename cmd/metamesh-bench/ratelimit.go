package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync/atomic"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
)

// noMatchMethod is a method no request of any workload calls: a global
// limit matching it is asked about by no request.
const noMatchMethod = "noSuchMethod"

// okService is a rate-limit service (Envoy's RateLimitService API) that
// answers OK to every call and counts them. It runs in the bench's own
// process, so the limit never triggers and what the run measures is what
// asking costs the proxy (one gRPC call per request), not a rate-limit
// server's own work (Envoy's with Redis, as in the interop tests).
type okService struct {
	rlsv3.UnimplementedRateLimitServiceServer
	calls atomic.Int64
	srv   *grpc.Server
	addr  string
}

func (s *okService) ShouldRateLimit(context.Context, *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	s.calls.Add(1)
	return &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}, nil
}

// startOKService serves an okService on a free 127.0.0.1 port until its
// stop.
func startOKService() (*okService, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &okService{srv: grpc.NewServer(), addr: l.Addr().String()}
	rlsv3.RegisterRateLimitServiceServer(s.srv, s)
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *okService) stop() { s.srv.Stop() }

// globalLimitRuns measures two more runs through proxies of their own on
// cfg with a global rate limit asking an okService: one whose limit
// matches every request (each asks, none is limited), one whose limit
// matches none (noMatchMethod).
func globalLimitRuns(ctx context.Context, o options, w *workload, dir string, cfg bootstrapConfig, procs map[string]*child, r *result) error {
	rls, err := startOKService()
	if err != nil {
		return err
	}
	defer rls.stop()
	asked := cfg
	asked.GlobalLimit = &globalLimitConfig{Service: rls.addr}
	if r.limited, _, err = variant(ctx, o, w, dir, "global limit", "proxy-global-limit", asked, procs); err != nil {
		return err
	}
	r.rlsCalls = rls.calls.Load()
	r.proxyLog += r.limited.proxyLog
	none := cfg
	none.GlobalLimit = &globalLimitConfig{Service: rls.addr, Match: noMatchMethod}
	before := rls.calls.Load()
	if r.unmatched, _, err = variant(ctx, o, w, dir, "limit, no match", "proxy-global-nomatch", none, procs); err != nil {
		return err
	}
	r.proxyLog += r.unmatched.proxyLog
	if n := rls.calls.Load() - before; n != 0 {
		return fmt.Errorf("a global limit matching no request asked the rate-limit service %d times", n)
	}
	return nil
}

// compareGlobal prints the runs with a global limit against the plain
// proxied one: what asking the service about every request costs
// (throughput, p99 added), and what a limit no request matches costs
// (nothing measurable, read against the noise between runs).
func compareGlobal(w io.Writer, r *result) {
	p := r.proxied
	for _, m := range []*measurement{r.limited, r.unmatched} {
		if m.res.OK == 0 || p.res.OK == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-26s throughput %.2f, p50 %s → %s, p99 %s → %s (added %s), proxy CPU s/100k %s → %s\n", m.name+" vs proxied:",
			m.res.Throughput()/p.res.Throughput(), ms(p.res.Hist.Quantile(0.5)), ms(m.res.Hist.Quantile(0.5)),
			ms(p.res.Hist.Quantile(0.99)), ms(m.res.Hist.Quantile(0.99)), ms(m.res.Hist.Quantile(0.99)-p.res.Hist.Quantile(0.99)),
			p.perRequest(p.cpu, "proxy", 1e5), m.perRequest(m.cpu, "proxy", 1e5))
	}
	if m := r.limited; m.res.OK > 0 {
		fmt.Fprintf(w, "  rate-limit service calls:  %d, %.2f per measured request (the warm-up's ask too; the service runs in the bench process)\n",
			r.rlsCalls, float64(r.rlsCalls)/float64(m.res.OK))
	}
	errorSamples(w, r.limited)
	errorSamples(w, r.unmatched)
}
