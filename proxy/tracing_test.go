package proxy

import (
	"context"
	"encoding/hex"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"

	"github.com/metamesh/metamesh/proxy/tracing"
)

// receiver is an in-process OTLP/gRPC trace collector.
type receiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (r *receiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *receiver) got() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

func startReceiver(t *testing.T) (*receiver, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, r)
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return r, ln.Addr().String()
}

func TestTracing(t *testing.T) {
	rcv, endpoint := startReceiver(t)
	tr, err := tracing.New(context.Background(), tracing.Options{Endpoint: endpoint, Insecure: true, SampleRatio: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{up.addr()}, MutateTo: "metamesh"})
	srv.SetTracer(tr)
	c := dial(t, addr)

	// A client-sampled trace is recorded whatever the ratio (0 here).
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	status, _ := c.call(1, svc, "sayHello", header("traceparent", "00-"+traceID+"-"+parentID+"-01"))
	if status != 20 {
		t.Fatalf("status %d", status)
	}
	forwarded, _ := up.last.Load().(map[string]string)
	// An unsampled request without context: no span, nothing injected.
	c.call(2, svc, "sayHello")
	if _, ok := up.last.Load().(map[string]string)["traceparent"]; ok {
		t.Fatal("a request with no trace context was forwarded with a traceparent at ratio 0")
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var spans []*tracepb.Span
	waitUntil(t, 5*time.Second, "the span to reach the collector", func() bool { spans = rcv.got(); return len(spans) > 0 })
	if len(spans) != 1 {
		t.Fatalf("%d spans exported, want 1 (the sampled request's)", len(spans))
	}
	sp := spans[0]
	if hex.EncodeToString(sp.GetTraceId()) != traceID || hex.EncodeToString(sp.GetParentSpanId()) != parentID {
		t.Fatalf("span trace %x parent %x; want the client's %s / %s", sp.GetTraceId(), sp.GetParentSpanId(), traceID, parentID)
	}
	attrs := map[string]string{}
	for _, kv := range sp.GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	for k, v := range map[string]string{"rpc.system": "dubbo", "rpc.service": svc, "rpc.method": "sayHello",
		"metamesh.route": "default", "metamesh.cluster": "v1", "server.address": up.addr(), "metamesh.status": "ok"} {
		if attrs[k] != v {
			t.Errorf("span attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	// The upstream continues the trace from the proxy's span, and the
	// route's own mutation still applies.
	want := "00-" + traceID + "-" + hex.EncodeToString(sp.GetSpanId()) + "-01"
	if forwarded["traceparent"] != want || forwarded["x-routed-by"] != "metamesh" {
		t.Fatalf("forwarded traceparent %q, x-routed-by %q; want %q and the route's mutation", forwarded["traceparent"], forwarded["x-routed-by"], want)
	}
	if !strings.HasPrefix(sp.GetName(), "dubbo "+svc) {
		t.Errorf("span name %q", sp.GetName())
	}
}

// Requests on a connection a session pinned are traced each on its own:
// one span per request, none borrowed from the request that pinned it.
func TestPinnedRequestsGetTheirOwnSpans(t *testing.T) {
	rcv, endpoint := startReceiver(t)
	tr, err := tracing.New(context.Background(), tracing.Options{Endpoint: endpoint, Insecure: true, SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	srv, nc := startLines(t, "test-line-session")
	srv.SetTracer(tr)
	reqs := []string{"f-pin a", "s1 b", "x2 c", "f-unpin d"}
	exchangeLines(t, nc, reqs, []string{"fast:f-pin a", "fast:s1 b", "fast:x2 c", "fast:f-unpin d"})
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var spans []*tracepb.Span
	waitUntil(t, 5*time.Second, "a span per request", func() bool { spans = rcv.got(); return len(spans) >= len(reqs) })
	ids := map[string]bool{}
	for _, sp := range spans {
		ids[hex.EncodeToString(sp.GetSpanId())] = true
	}
	if len(spans) != len(reqs) || len(ids) != len(reqs) {
		t.Fatalf("%d spans (%d distinct) for %d requests on a pinned connection", len(spans), len(ids), len(reqs))
	}
}
