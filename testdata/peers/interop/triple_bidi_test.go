package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmd "google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/tripletest"
)

// Client and bidirectional streams through the proxy (docs/triple-streams.md,
// piece 5): their request is relayed part by part, not buffered whole.

var (
	echoStream    = &grpc.StreamDesc{StreamName: "Echo", ServerStreams: true, ClientStreams: true}
	collectStream = &grpc.StreamDesc{StreamName: "Collect", ClientStreams: true}
)

// streamer is a grpc-go server of the streams Echo (bidirectional: each
// message back as it comes) and Collect (client stream: one answer
// saying how many messages came, in order, and the header x-routed-by).
// ended gets how each handler ended, when set.
type streamer struct{ ended chan error }

func (s streamer) echo(_ any, ss grpc.ServerStream) error {
	err := func() error {
		in := new(wrapperspb.StringValue)
		for {
			if err := ss.RecvMsg(in); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if err := ss.SendMsg(in); err != nil {
				return err
			}
		}
	}()
	if s.ended != nil {
		s.ended <- err
	}
	return err
}

func (s streamer) collect(_ any, ss grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	n, bytes := 0, 0
	for {
		if err := ss.RecvMsg(in); err != nil {
			if !errors.Is(err, io.EOF) {
				return err
			}
			break
		}
		if got := in.GetValue(); len(got) < 8 || got[:8] != fmt.Sprintf("%08d", n) {
			return grpcstatus.Errorf(codes.InvalidArgument, "message %d begins %q", n, got[:min(len(got), 8)])
		}
		n++
		bytes += len(in.GetValue())
	}
	md, _ := grpcmd.FromIncomingContext(ss.Context())
	return ss.SendMsg(wrapperspb.String(fmt.Sprintf("%d messages, %d bytes, in order, x-routed-by %v", n, bytes, md.Get("x-routed-by"))))
}

// startStreamer serves Echo and Collect with grpc-go on a free port, with
// fixed 64 KiB windows (no BDP growth), so that what the server buffers
// is bounded too.
func startStreamer(t *testing.T, ended chan error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.InitialWindowSize(64<<10), grpc.InitialConnWindowSize(64<<10))
	st := streamer{ended}
	s.RegisterService(&grpc.ServiceDesc{ServiceName: grpcService, HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{
			{StreamName: "Echo", ServerStreams: true, ClientStreams: true, Handler: st.echo},
			{StreamName: "Collect", ClientStreams: true, Handler: st.collect},
		}}, struct{}{})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// dialSlow connects a grpc-go client with fixed 64 KiB windows.
func dialSlow(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// A grpc-go bidirectional stream echoing 10,000 messages of 4 KiB (40 MB
// each way) through the proxy (maxMessageBytes 64 KiB, far below the
// stream), the client sending as fast as flow control lets it and
// reading slowly: every echo arrives, in order, and the test process's
// live heap (proxy, server and client) stays bounded by the windows, not
// by the stream's length. Before the request relay the proxy buffered
// the request until its end, so the stream failed at the limit. The
// client's deadline (grpc-timeout) bounds the stream in the proxy too:
// it is followed as an exchange, as a route with a timeout would be.
func TestTripleBidiStream(t *testing.T) {
	const (
		messages = 10_000
		size     = 4 << 10
	)
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startStreamer(t, nil),
		CodecConfig: `{"maxMessageBytes": 65536}`}
	startProxyWith(t, r.resources(t))
	cc := dialSlow(t, r.Listen)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := cc.NewStream(ctx, echoStream, "/"+grpcService+"/Echo")
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() {
		pad := strings.Repeat("e", size-8)
		for i := range messages {
			if err := cs.SendMsg(wrapperspb.String(fmt.Sprintf("%08d", i) + pad)); err != nil {
				sent <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		sent <- cs.CloseSend()
	}()
	readSlowly(t, cs, messages, size, "echo", "its writers")
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// watchdog is a context cancelled after d, without a deadline: grpc-go
// then sends no grpc-timeout, so the proxy follows the stream without an
// exchange (a route without policies), where a deadline would give it one.
func watchdog(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(d, cancel)
	t.Cleanup(func() { timer.Stop(); cancel() })
	return ctx
}

// A bidirectional client that waits for each answer before it sends the
// next message: the proxy must send the first message on before the
// request ends (the read ends with a whole message and nothing more),
// or the client waits forever (here: until the 30 s watchdog). The
// stream is counted as one request, ok, whose duration spans the whole
// stream (at least the 100 pauses of 2 ms between its rounds).
func TestTripleBidiPingPong(t *testing.T) {
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startStreamer(t, nil)}
	srv := startProxyWith(t, r.resources(t))
	cc := dialSlow(t, r.Listen)
	ctx := watchdog(t, 30*time.Second)
	cs, err := cc.NewStream(ctx, echoStream, "/"+grpcService+"/Echo")
	if err != nil {
		t.Fatal(err)
	}
	out := new(wrapperspb.StringValue)
	for i := range 100 {
		want := fmt.Sprintf("ping %d", i)
		if err := cs.SendMsg(wrapperspb.String(want)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if err := cs.RecvMsg(out); err != nil || out.GetValue() != want {
			t.Fatalf("answer %d: %q, %v; want %q (a stream the proxy holds until its end never answers)", i, out.GetValue(), err, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := cs.RecvMsg(out); err != io.EOF {
		t.Fatalf("after 100 answers: %v, want the end of the stream", err)
	}
	var counted map[string]float64
	var n uint64
	var took float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if counted, n, took = requestsOf(t, srv.Metrics(), grpcService); n > 0 {
			break
		}
	}
	if len(counted) != 1 || counted["ok"] != 1 || n != 1 || took < 0.2 {
		t.Fatalf("counted %v, %d durations summing %.3f s; want one request, ok, lasting the stream (at least 0.2 s)", counted, n, took)
	}
}

// requestsOf is what the proxy counted of service's requests: their
// number by status, and the number and sum of their durations.
func requestsOf(t *testing.T, m *metrics.Proxy, service string) (byStatus map[string]float64, n uint64, sum float64) {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byStatus = map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["service"] != service || labels["protocol"] != "triple" {
				continue
			}
			switch f.GetName() {
			case "metamesh_requests_total":
				if v := mt.GetCounter().GetValue(); v > 0 {
					byStatus[labels["status"]] += v
				}
			case "metamesh_request_duration_seconds":
				n += mt.GetHistogram().GetSampleCount()
				sum += mt.GetHistogram().GetSampleSum()
			}
		}
	}
	return byStatus, n, sum
}

// A grpc-go client stream of 5,000 messages of 1 KiB (5 MB) through the
// proxy with maxMessageBytes 64 KiB: one answer, from a server that got
// every message in order, with the header the route sets (a mutation
// applies to a stream's first part). With x-delayed the route delays the
// stream 0.2 s (a fault): the messages that come meanwhile are held, then
// sent after the first, in order.
func TestTripleClientStream(t *testing.T) {
	const messages = 5000
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startStreamer(t, nil),
		CodecConfig: `{"maxMessageBytes": 65536}`}
	startProxyWith(t, r.resources(t))
	cc := dialSlow(t, r.Listen)
	for _, delayed := range []bool{false, true} {
		t.Run(fmt.Sprintf("delayed=%v", delayed), func(t *testing.T) {
			ctx, routedBy := watchdog(t, time.Minute), "metamesh"
			if delayed {
				ctx, routedBy = grpcmd.AppendToOutgoingContext(ctx, "x-delayed", "yes"), "delayed"
			}
			cs, err := cc.NewStream(ctx, collectStream, "/"+grpcService+"/Collect")
			if err != nil {
				t.Fatal(err)
			}
			pad := strings.Repeat("c", 1024-8)
			for i := range messages {
				if err := cs.SendMsg(wrapperspb.String(fmt.Sprintf("%08d", i) + pad)); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			if err := cs.CloseSend(); err != nil {
				t.Fatal(err)
			}
			out := new(wrapperspb.StringValue)
			if err := cs.RecvMsg(out); err != nil {
				t.Fatalf("answer: %v", err)
			}
			if want := fmt.Sprintf("%d messages, %d bytes, in order, x-routed-by [%s]", messages, messages*1024, routedBy); out.GetValue() != want {
				t.Fatalf("answer %q, want %q", out.GetValue(), want)
			}
			if err := cs.RecvMsg(out); err != io.EOF {
				t.Fatalf("after the answer: %v, want the end of the stream", err)
			}
		})
	}
}

// A route's timeout bounds a bidirectional stream as a whole (piece 6 of
// docs/triple-streams.md): a client that keeps the stream going past the
// route's 0.3 s gets the proxy's DEADLINE_EXCEEDED after the answers it
// read, and the server's stream is cancelled; the proxy counts one
// request, timed out.
func TestTripleBidiStreamTimeout(t *testing.T) {
	ended := make(chan error, 1)
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startStreamer(t, ended)}
	srv := startProxyWith(t, r.resources(t))
	cc := dialSlow(t, r.Listen)
	// x-timed routes to the route with a 0.3 s timeout; the client sets
	// no deadline of its own.
	ctx := grpcmd.AppendToOutgoingContext(watchdog(t, time.Minute), "x-timed", "yes")
	cs, err := cc.NewStream(ctx, echoStream, "/"+grpcService+"/Echo")
	if err != nil {
		t.Fatal(err)
	}
	out := new(wrapperspb.StringValue)
	n := 0
	for ; ; n++ {
		want := fmt.Sprintf("ping %d", n)
		if err = cs.SendMsg(wrapperspb.String(want)); err != nil {
			break // the stream ended: its status comes with RecvMsg
		}
		if err = cs.RecvMsg(out); err != nil {
			break
		}
		if out.GetValue() != want {
			t.Fatalf("answer %q, want %q", out.GetValue(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err == io.EOF {
		err = cs.RecvMsg(out)
	}
	if st := grpcstatus.Convert(err); st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), "no reply within 300ms") {
		t.Fatalf("after %d answers: %v; want the proxy's DEADLINE_EXCEEDED naming its 300ms", n, err)
	}
	if n == 0 {
		t.Fatal("no answer before the timeout: the stream was not relayed")
	}
	awaitCancelled(t, ended, "the proxy's timeout")
	if counted, n, _ := requestsOf(t, srv.Metrics(), grpcService); len(counted) != 1 || counted["timeout"] != 1 || n != 1 {
		t.Fatalf("counted %v (%d durations); want one request, timed out", counted, n)
	}
}

// A real dubbo-go v3.3.0 Triple consumer's bidirectional stream to real
// dubbo-go providers through the proxy (maxMessageBytes 64 KiB): 10,000
// messages of 1 KiB echoed in order, the consumer reading slowly. The
// stream is routed once: its route splits calls 80/20 between v1 and v2,
// and every answer comes from the one provider its first message went to.
func TestTripleDubboBidiStream(t *testing.T) {
	const messages = 10_000
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: tripletest.StartProvider(t, "v1"), V2: tripletest.StartProvider(t, "v2"),
		GRPC: "127.0.0.1:1", CodecConfig: `{"maxMessageBytes": 65536}`}
	startProxyWith(t, r.resources(t))
	res := tripletest.Echo(t, r.Listen, messages, 1024)
	if res.Failed > 0 || len(res.Replies) != 1 || res.Replies["v1"]+res.Replies["v2"] != messages {
		t.Fatalf("%v; want %d answers in order, all from one provider", res, messages)
	}
	t.Logf("%v, sample %q", res.Replies, res.Sample)
}

// A client that cancels a bidirectional stream (RST_STREAM) has the
// server's stream cancelled too, while the request is still open (the
// server waits for its next message).
func TestTripleBidiStreamCancelled(t *testing.T) {
	ended := make(chan error, 1)
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startStreamer(t, ended)}
	srv := startProxyWith(t, r.resources(t))
	cc := dialSlow(t, r.Listen)
	ctx, cancel := context.WithCancel(watchdog(t, time.Minute))
	cs, err := cc.NewStream(ctx, echoStream, "/"+grpcService+"/Echo")
	if err != nil {
		t.Fatal(err)
	}
	out := new(wrapperspb.StringValue)
	for i := range 10 {
		if err := cs.SendMsg(wrapperspb.String(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if err := cs.RecvMsg(out); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	cancel()
	awaitCancelled(t, ended, "its client cancelled it")
	var counted map[string]float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && counted["cancelled"] == 0; time.Sleep(10 * time.Millisecond) {
		counted, _, _ = requestsOf(t, srv.Metrics(), grpcService)
	}
	if len(counted) != 1 || counted["cancelled"] != 1 {
		t.Fatalf("counted %v; want one request, cancelled", counted)
	}
}
