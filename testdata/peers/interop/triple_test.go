package interop

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"text/template"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmd "google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/tracing"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/tripletest"

	_ "github.com/metamesh/metamesh/protocols/triple"
)

// tripleTmpl is the proxy config of the Triple tests: calls of method
// Attachment go to v1 with a header set; batchjob=true goes to v2; the
// rest splits 80/20.
var tripleTmpl = template.Must(template.New("").Funcs(listenerFuncs).Parse(`
resources:
{{listener "triple" "triple" .Port}}
{{- if .CodecConfig}}
        codec_config: {{.CodecConfig}}
{{- end}}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: triple
  virtual_hosts:
  - name: greeter
    domains: ["{{.Iface}}"]
    routes:
    - name: by-method
      match: {prefix: "", headers: [{name: method, string_match: {exact: Attachment}}]}
      request_headers_to_add: [{header: {key: x-routed-by, value: by-method}}]
      route: {cluster: "outbound|20000|v1|greeter"}
    - name: batchjob
      match: {prefix: "", headers: [{name: batchjob, string_match: {exact: "true"}}]}
      route: {cluster: "outbound|20000|v2|greeter"}
    - name: canary
      match: {prefix: ""}
      route:
        weighted_clusters:
          clusters:
          - {name: "outbound|20000|v1|greeter", weight: 80}
          - {name: "outbound|20000|v2|greeter", weight: 20}
  - name: grpc
    domains: ["{{.GRPCService}}"]
    routes:
    - name: timed
      match: {prefix: "", headers: [{name: x-timed, string_match: {exact: "yes"}}]}
      route: {cluster: "outbound|20000|grpc|echo", timeout: 0.3s}
    - name: delayed
      match: {prefix: "", headers: [{name: x-delayed, string_match: {exact: "yes"}}]}
      typed_per_filter_config:
        metamesh.meta_protocol_proxy: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.RoutePolicy, fault: {delay: {fixed_delay: 0.2s, percentage: 100}}}
      request_headers_to_add: [{header: {key: x-routed-by, value: delayed}}]
      route: {cluster: "outbound|20000|grpc|echo"}
    - match: {prefix: ""}
      request_headers_to_add: [{header: {key: x-routed-by, value: metamesh}}]
      route: {cluster: "outbound|20000|grpc|echo"}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: "outbound|20000|grpc|echo"
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: "outbound|20000|grpc|echo"
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.GRPCPort}}}}}
{{- range $subset, $addr := .Subsets}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: "outbound|20000|{{$subset}}|greeter"
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: "outbound|20000|{{$subset}}|greeter"
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{index $.Ports $subset}}}}}
{{- end}}
`))

type tripleRoutes struct {
	Listen, V1, V2, GRPC string
	// CodecConfig is the listener's codec_config (JSON), when set.
	CodecConfig string
}

func (r tripleRoutes) GRPCService() string { return grpcService }
func (r tripleRoutes) GRPCPort() string    { return routes{}.Port(r.GRPC) }

func (r tripleRoutes) Iface() string              { return tripleIface }
func (r tripleRoutes) Port() string               { return routes{}.Port(r.Listen) }
func (r tripleRoutes) Subsets() map[string]string { return map[string]string{"v1": r.V1, "v2": r.V2} }
func (r tripleRoutes) Ports() map[string]string {
	return map[string]string{"v1": routes{}.Port(r.V1), "v2": routes{}.Port(r.V2)}
}
func (r tripleRoutes) resources(t testing.TB) *xdsapi.Resources {
	t.Helper()
	return resourcesFrom(t, tripleTmpl, r)
}

const tripleIface = tripletest.Interface

// startProxyWith runs a proxy in this process on res.
func startProxyWith(t testing.TB, res *xdsapi.Resources) *proxy.Server {
	t.Helper()
	srv := newProxy(t, metrics.NewProxy())
	if err := srv.Apply(res); err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

// Real dubbo-go v3.3.0 Triple consumers and providers through the proxy:
// unary calls routed by method and by an attachment, split 80/20, with a
// header set by the route reaching the provider, and the proxy's own
// UNIMPLEMENTED for a service no route names.
func TestTripleThroughProxy(t *testing.T) {
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: tripletest.StartProvider(t, "v1"), V2: tripletest.StartProvider(t, "v2"),
		GRPC: startGRPCEcho(t)}
	startProxyWith(t, r.resources(t))

	t.Run("routed by method, mutated header reaches the provider", func(t *testing.T) {
		res := tripletest.Run(t, tripletest.Calls{Addr: r.Listen, Method: "Attachment", Arg: "x-routed-by"})
		if res.Failed > 0 || res.Sample != "v1|by-method" {
			t.Fatalf("%v, sample %q; want v1 with the header the route set", res, res.Sample)
		}
		// Calls of other methods split 80/20: 100 calls all on v1 would be
		// chance once in 5e9.
		res = tripletest.Run(t, tripletest.Calls{Addr: r.Listen, Method: "Attachment", Arg: "other", N: 100, C: 4})
		if res.Failed > 0 || res.Replies["v1"] != 100 {
			t.Fatalf("%v; want 100 replies from v1", res)
		}
	})
	t.Run("batchjob attachment isolated on v2", func(t *testing.T) {
		res := tripletest.Run(t, tripletest.Calls{Addr: r.Listen, Method: "SayHello", Arg: "batch", N: 200, C: 8,
			Attach: map[string]string{"batchjob": "true"}})
		if res.Failed > 0 || res.Replies["v2"] != 200 {
			t.Fatalf("%v; want 200 replies from v2", res)
		}
	})
	t.Run("80/20 split", func(t *testing.T) {
		const calls = 2000
		res := tripletest.Run(t, tripletest.Calls{Addr: r.Listen, Method: "SayHello", Arg: "split", N: calls, C: 16})
		if res.Failed > 0 {
			t.Fatalf("%v", res)
		}
		share := float64(res.Replies["v1"]) / calls * 100
		t.Logf("v1 %d, v2 %d: v1 share %.1f%%", res.Replies["v1"], res.Replies["v2"], share)
		if share < 75 || share > 85 {
			t.Fatalf("v1 share %.1f%%, want 80 ± 5", share)
		}
	})
	t.Run("grpc-go client and server", func(t *testing.T) { grpcThroughProxy(t, r.Listen) })
	t.Run("no route is UNIMPLEMENTED naming the service", func(t *testing.T) {
		res := tripletest.Run(t, tripletest.Calls{Addr: r.Listen, Interface: "com.example.Missing", Method: "SayHello", Arg: "x"})
		if res.Failed != 1 || len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0], "unimplemented: ") ||
			!strings.Contains(res.Errors[0], "com.example.Missing") {
			t.Fatalf("%v; want the proxy's UNIMPLEMENTED naming com.example.Missing", res)
		}
		t.Logf("dubbo-go's error: %s", res.Errors[0])
	})
}

// grpcService is the plain gRPC service of the grpc-go peers.
const grpcService = "metamesh.test.Echo"

// echoServer answers Echo with its request and the x-routed-by header it
// received: "<value>|<header>".
type echoServer struct{}

func (echoServer) echo(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	md, _ := grpcmd.FromIncomingContext(ctx)
	return wrapperspb.String(in.GetValue() + "|" + strings.Join(md.Get("x-routed-by"), ",")), nil
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: grpcService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Echo", Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		return srv.(echoServer).echo(ctx, in)
	}}, {MethodName: "Header", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		// Answers with the value of the header the request names.
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		md, _ := grpcmd.FromIncomingContext(ctx)
		return wrapperspb.String(strings.Join(md.Get(in.GetValue()), ",")), nil
	}}},
	Streams: []grpc.StreamDesc{{StreamName: "Count", ServerStreams: true, Handler: count}},
}

// startGRPCEcho serves echoServer with grpc-go on a free port.
func startGRPCEcho(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	s.RegisterService(&echoDesc, echoServer{})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// startSilent serves HTTP/2 without TLS on a free port, answering no
// request until its client gives up. Unlike a gRPC server it keeps no
// deadline of its own from grpc-timeout (grpc-go's resets the stream when
// it passes, racing the proxy's timer), so only the proxy ends a call.
func startSilent(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var proto http.Protocols
	proto.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &proto, Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// A grpc-go client and server (plain gRPC, no Dubbo) through the same
// Triple listener: routed by service, with the route's header.
func grpcThroughProxy(t *testing.T, listen string) {
	cc, err := grpc.NewClient(listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 100 {
		in, out := wrapperspb.String(fmt.Sprintf("hello-%d", i)), new(wrapperspb.StringValue)
		if err := cc.Invoke(ctx, "/"+grpcService+"/Echo", in, out); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if want := in.GetValue() + "|metamesh"; out.GetValue() != want {
			t.Fatalf("call %d = %q, want %q", i, out.GetValue(), want)
		}
	}
	err = cc.Invoke(ctx, "/metamesh.test.Missing/Echo", wrapperspb.String("x"), new(wrapperspb.StringValue))
	if st := grpcstatus.Convert(err); st.Code() != codes.Unimplemented || !strings.Contains(st.Message(), "metamesh.test.Missing") {
		t.Fatalf("unknown service: %v; want UNIMPLEMENTED naming it", err)
	}
}

// grpc-timeout is the call's timeout when it is smaller than the route's:
// a net/http HTTP/2 client (which, unlike grpc-go, sends grpc-timeout
// without timing the call itself) calls a server that never answers (and
// keeps no deadline itself), and the proxy's DEADLINE_EXCEEDED names the
// timeout it applied.
func TestTripleGRPCTimeout(t *testing.T) {
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startSilent(t)}
	startProxyWith(t, r.resources(t))
	var proto http.Protocols
	proto.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &proto}}
	for _, tc := range []struct {
		timeout, route, want string
	}{
		{timeout: "200m", want: "200ms"},               // the route sets none
		{timeout: "100m", route: "yes", want: "100ms"}, // smaller than the route's 300 ms
		{timeout: "50S", route: "yes", want: "300ms"},  // the route's is smaller
	} {
		body := []byte{0, 0, 0, 0, 0} // an empty StringValue in a gRPC frame
		req, err := http.NewRequest(http.MethodPost, "http://"+r.Listen+"/"+grpcService+"/Wait", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("content-type", "application/grpc")
		req.Header.Set("te", "trailers")
		req.Header.Set("grpc-timeout", tc.timeout)
		if tc.route != "" {
			req.Header.Set("x-timed", tc.route)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status, msg := resp.Header.Get("grpc-status"), resp.Header.Get("grpc-message")
		if status != "4" || !strings.HasSuffix(msg, "no reply within "+tc.want) {
			t.Fatalf("grpc-timeout %s, x-timed %q: grpc-status %q, grpc-message %q; want 4 (DEADLINE_EXCEEDED) after %s",
				tc.timeout, tc.route, status, msg, tc.want)
		}
	}
}

// A gRPC call's traceparent header is the parent of the proxy's span, and
// the upstream receives the trace continued from that span.
func TestTripleTracing(t *testing.T) {
	rcv := &otlpReceiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, rcv)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	tr, err := tracing.New(context.Background(), tracing.Options{Endpoint: ln.Addr().String(), Insecure: true, SampleRatio: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })

	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startGRPCEcho(t)}
	startProxyWith(t, r.resources(t)).SetTracer(tr)
	cc, err := grpc.NewClient(r.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = grpcmd.AppendToOutgoingContext(ctx, "traceparent", "00-"+traceID+"-"+parent+"-01")
	out := new(wrapperspb.StringValue)
	if err := cc.Invoke(ctx, "/"+grpcService+"/Header", wrapperspb.String("traceparent"), out); err != nil {
		t.Fatal(err)
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var spans []*tracepb.Span
	waitFor(t, 5*time.Second, "the call's span", func() bool { spans = rcv.withParent(parent); return len(spans) > 0 })
	sp := spans[0]
	if len(spans) != 1 || hex.EncodeToString(sp.GetTraceId()) != traceID || !strings.HasPrefix(sp.GetName(), "triple "+grpcService) {
		t.Fatalf("%d spans with parent %s; the first: trace %x, name %q", len(spans), parent, sp.GetTraceId(), sp.GetName())
	}
	if want := "00-" + traceID + "-" + hex.EncodeToString(sp.GetSpanId()) + "-01"; out.GetValue() != want {
		t.Fatalf("the upstream got traceparent %q, want %q (continued from the proxy's span)", out.GetValue(), want)
	}
}
