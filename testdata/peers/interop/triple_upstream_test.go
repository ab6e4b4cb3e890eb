package interop

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// limitService is a grpc-go service that tells which server answered
// (Name) and holds calls (Hold): each waits until released, or until as
// many calls as its argument says are held at once.
const limitService = "metamesh.test.Limits"

type limitServer struct {
	name    string
	mu      sync.Mutex
	held    int
	all     chan struct{} // closed when the wanted number is held at once
	want    int
	release chan struct{} // closed to release every held call
}

func newLimitServer(name string, want int) *limitServer {
	return &limitServer{name: name, all: make(chan struct{}), want: want, release: make(chan struct{})}
}

func (s *limitServer) hold(ctx context.Context) (*wrapperspb.StringValue, error) {
	s.mu.Lock()
	s.held++
	if s.held == s.want {
		close(s.all)
	}
	s.mu.Unlock()
	select {
	case <-s.all:
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return wrapperspb.String(s.name), nil
}

var limitDesc = grpc.ServiceDesc{
	ServiceName: limitService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Name", Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		if err := dec(new(wrapperspb.StringValue)); err != nil {
			return nil, err
		}
		return wrapperspb.String(srv.(*limitServer).name), nil
	}}, {MethodName: "Hold", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		if err := dec(new(wrapperspb.StringValue)); err != nil {
			return nil, err
		}
		return srv.(*limitServer).hold(ctx)
	}}},
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// serveLimits serves s with grpc-go on addr ("" for a free port), with opts.
func serveLimits(t testing.TB, addr string, s *limitServer, opts ...grpc.ServerOption) (*grpc.Server, *countingListener) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the port of a server stopped a moment ago
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	gs := grpc.NewServer(opts...)
	gs.RegisterService(&limitDesc, s)
	go func() { _ = gs.Serve(cl) }()
	t.Cleanup(gs.Stop)
	return gs, cl
}

// limitsProxy runs a proxy whose triple listener routes limitService to
// the one host upstream, with at most one connection to it unless its
// limits ask for more.
func limitsProxy(t testing.TB, upstream string) string {
	t.Helper()
	listen := harness.FreeAddr(t)
	res, err := xdsapi.Parse(fmt.Appendf(nil, `
resources:
%s
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: triple
  virtual_hosts:
  - name: limits
    domains: ["%s"]
    routes:
    - match: {prefix: ""}
      route: {cluster: limits}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: limits
  type: STATIC
  connect_timeout: 1s
  circuit_breakers: {thresholds: [{max_connections: 1}]}
  load_assignment:
    cluster_name: limits
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}
`, metaListener("triple", "triple", routes{}.Port(listen)), limitService, routes{}.Port(upstream)))
	if err != nil {
		t.Fatal(err)
	}
	startProxyWith(t, res)
	return listen
}

func limitsClient(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func call(ctx context.Context, cc *grpc.ClientConn, method string) (string, error) {
	out := new(wrapperspb.StringValue)
	err := cc.Invoke(ctx, "/"+limitService+"/"+method, wrapperspb.String(""), out)
	return out.GetValue(), err
}

// An upstream grpc-go server that takes one stream at a time per
// connection (MaxConcurrentStreams(1)): four calls the server holds until
// all four are in its handler at once can only pass if the proxy, though
// its cluster allows one connection, opens a connection per stream the
// server's limit leaves no room for. One grpc-go client connection
// carries all four to the proxy.
func TestTripleUpstreamMaxConcurrentStreams(t *testing.T) {
	const calls = 4
	srv := newLimitServer("a", calls)
	_, ln := serveLimits(t, "", srv, grpc.MaxConcurrentStreams(1))
	cc := limitsClient(t, limitsProxy(t, ln.Addr().String()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, calls)
	for range calls {
		go func() {
			_, err := call(ctx, cc, "Hold")
			errs <- err
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Fatalf("held call: %v", err)
		}
	}
	if n := ln.n.Load(); n != calls {
		t.Errorf("the server accepted %d connections, want %d (one per stream it takes)", n, calls)
	}
}

// An upstream grpc-go server's GracefulStop (GOAWAY, then it waits for
// the streams it took) drains the proxy's connection to it: a call the
// server holds finishes on it, and the calls made meanwhile go on a new
// connection, to the server now listening at the same address, none
// failing.
func TestTripleUpstreamGoAway(t *testing.T) {
	old := newLimitServer("old", 0)
	gs, ln := serveLimits(t, "", old)
	addr := ln.Addr().String()
	cc := limitsClient(t, limitsProxy(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if name, err := call(ctx, cc, "Name"); err != nil || name != "old" {
		t.Fatalf("first call: %q, %v", name, err)
	}
	held := make(chan error, 1)
	go func() {
		name, err := call(ctx, cc, "Hold")
		if err == nil && name != "old" {
			err = fmt.Errorf("answered by %q", name)
		}
		held <- err
	}()
	for old.heldNow() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop() // GOAWAY; waits for the held call
		close(stopped)
	}()
	serveLimits(t, addr, newLimitServer("new", 0))
	// Calls until one reaches the new server: each must succeed, on the
	// old connection before the proxy read its GOAWAY, after on a new one.
	for i := 0; ; i++ {
		name, err := call(ctx, cc, "Name")
		if err != nil {
			t.Fatalf("call %d during the drain: %v", i, err)
		}
		if name == "new" {
			t.Logf("%d calls before one reached the new server", i+1)
			break
		}
	}
	for i := range 20 {
		if name, err := call(ctx, cc, "Name"); err != nil || name != "new" {
			t.Fatalf("call %d after the drain: %q, %v; want the new server", i, name, err)
		}
	}
	select {
	case err := <-held:
		t.Fatalf("the held call ended before its release: %v", err)
	default:
	}
	close(old.release)
	if err := <-held; err != nil {
		t.Fatalf("held call: %v", err)
	}
	<-stopped // the old server closed its drained connection
}

func (s *limitServer) heldNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}
