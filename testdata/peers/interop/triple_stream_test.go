package interop

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcmd "google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	proto2 "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// count serves the server stream Count: its request "N SIZE" asks for N
// messages of SIZE bytes, message i beginning with i as 8 digits.
func count(_ any, ss grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	var n, size int
	if _, err := fmt.Sscanf(in.GetValue(), "%d %d", &n, &size); err != nil {
		return err
	}
	pad := strings.Repeat("m", max(size-8, 0))
	for i := range n {
		if err := ss.SendMsg(wrapperspb.String(fmt.Sprintf("%08d", i) + pad)); err != nil {
			return err
		}
	}
	return nil
}

var countStream = &grpc.StreamDesc{StreamName: "Count", ServerStreams: true}

// A grpc-go server stream of 10,000 messages through the proxy to a
// grpc-go client that reads slowly: every message arrives, in order, and
// the memory the stream takes (the test process's live heap: proxy,
// server and client) stays bounded by the flow-control windows (64 KiB
// here: the codec's maxMessageBytes; the bound checked is 2 MiB, a few
// dozen windows), not by the stream's 40 MB. The
// client's windows are fixed at 64 KiB (no BDP growth) so that what it
// buffers is bounded too.
func TestTripleServerStream(t *testing.T) {
	const (
		messages = 10_000
		size     = 4 << 10
	)
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startGRPCEcho(t),
		CodecConfig: `{"maxMessageBytes": 65536}`}
	startProxyWith(t, r.resources(t))
	cc, err := grpc.NewClient(r.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := cc.NewStream(ctx, countStream, "/"+grpcService+"/Count")
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.SendMsg(wrapperspb.String(fmt.Sprintf("%d %d", messages, size))); err != nil {
		t.Fatal(err)
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatal(err)
	}
	readSlowly(t, cs, messages, size, "message", "the server")
}

// readSlowly reads a stream of n messages of size bytes from cs, each
// beginning with its index (in order), sleeping 1 ms every 5 messages,
// then its end (OK), and checks that the test process's live heap grew by
// less than 2 MiB during it: the proxy slows writer (what wrote the
// stream) down to the reader rather than buffering the stream. what
// names a message in errors.
func readSlowly(t *testing.T, cs grpc.ClientStream, n, size int, what, writer string) {
	t.Helper()
	var base, peak uint64
	out := new(wrapperspb.StringValue)
	for i := range n {
		if err := cs.RecvMsg(out); err != nil {
			t.Fatalf("%s %d: %v", what, i, err)
		}
		if got := out.GetValue(); len(got) != size || got[:8] != fmt.Sprintf("%08d", i) {
			t.Fatalf("%s %d: %d bytes beginning %q, want %d bytes beginning %08d (in order)", what, i, len(got), got[:min(len(got), 8)], size, i)
		}
		if i%5 == 0 {
			time.Sleep(time.Millisecond) // a slow reader: its writer must wait for it
		}
		if i%500 == 0 {
			heap := liveHeap()
			if i == 0 {
				base = heap
			}
			peak = max(peak, heap)
		}
	}
	if err := cs.RecvMsg(out); err != io.EOF {
		t.Fatalf("after %d messages: %v, want the end of the stream (OK)", n, err)
	}
	grown := int64(peak) - int64(base)
	t.Logf("live heap: %d KiB after the first %s, at most %d KiB during the %d MiB stream (grew %d KiB)",
		base>>10, what, peak>>10, n*size>>20, grown>>10)
	if limit := int64(2 << 20); grown > limit {
		t.Fatalf("the live heap grew by %d KiB during the stream, more than %d KiB: the proxy buffers the stream rather than slowing %s", grown>>10, limit>>10, writer)
	}
}

// startCounter serves Count alone with grpc-go on a free port, telling
// ended how each stream's handler ended.
func startCounter(t *testing.T, ended chan<- error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	s.RegisterService(&grpc.ServiceDesc{ServiceName: grpcService, HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{StreamName: "Count", ServerStreams: true, Handler: func(srv any, ss grpc.ServerStream) error {
			err := count(srv, ss)
			ended <- err
			return err
		}}}}, struct{}{})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// awaitCancelled waits for the server's stream to end in error (it was
// cancelled) at most 30 s after what ended it.
func awaitCancelled(t *testing.T, ended <-chan error, after string) {
	t.Helper()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("the server's stream ended without error: it was not cancelled")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the server's stream still runs 30 s after %s: the proxy did not cancel it", after)
	}
}

// A client that stops reading a relayed server stream, by cancelling it
// (RST_STREAM) or by closing its connection, stops the stream at the
// server too: the proxy cancels the upstream stream, where it would
// otherwise wait forever for credit.
func TestTripleServerStreamCancelled(t *testing.T) {
	for _, how := range []string{"reset", "close"} {
		t.Run(how, func(t *testing.T) {
			ended := make(chan error, 4)
			r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startCounter(t, ended),
				CodecConfig: `{"maxMessageBytes": 65536}`}
			startProxyWith(t, r.resources(t))
			cc, err := grpc.NewClient(r.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cs := openCount(t, ctx, cc, "100000000 1024")
			out := new(wrapperspb.StringValue)
			for i := range 100 {
				if err := cs.RecvMsg(out); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
			}
			if how == "reset" {
				cancel()
			} else {
				_ = cc.Close()
			}
			awaitCancelled(t, ended, "its client's "+how)
		})
	}
}

// A route's timeout bounds a relayed server stream as a whole: the
// client's stream ends after the messages it read, and the server's stream
// is cancelled. How it ends depends on where the timeout falls: after a
// whole message, with the proxy's DEADLINE_EXCEEDED as trailers; inside
// one, with RST_STREAM CANCEL (which grpc-go reports as CANCELLED), not
// with trailers that cut the message short (which grpc-go reports as
// INTERNAL, as it did before: docs/triple-streams.md, piece 6).
func TestTripleServerStreamTimeout(t *testing.T) {
	ended := make(chan error, 1)
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startCounter(t, ended)}
	startProxyWith(t, r.resources(t))
	cc, err := grpc.NewClient(r.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// x-timed routes to the route with a 0.3 s timeout; the client sets
	// no deadline of its own.
	ctx := grpcmd.AppendToOutgoingContext(context.Background(), "x-timed", "yes")
	cs := openCount(t, ctx, cc, "100000000 1024")
	out := new(wrapperspb.StringValue)
	n := 0
	for ; ; n++ {
		if err = cs.RecvMsg(out); err != nil {
			break
		}
		if got := out.GetValue()[:8]; got != fmt.Sprintf("%08d", n) {
			t.Fatalf("message %d begins %q", n, got)
		}
		time.Sleep(time.Millisecond)
	}
	st := grpcstatus.Convert(err)
	switch {
	case st.Code() == codes.DeadlineExceeded && strings.Contains(st.Message(), "no reply within 300ms"):
		t.Logf("the timeout fell between two messages: %v", err)
	case st.Code() == codes.Canceled && strings.Contains(st.Message(), "RST_STREAM"):
		t.Logf("the timeout fell inside a message: %v", err)
	default:
		t.Fatalf("after %d messages: %v; want the proxy's DEADLINE_EXCEEDED naming its 300ms, or RST_STREAM CANCEL inside a message", n, err)
	}
	if n == 0 {
		t.Fatal("no message before the timeout: the stream was not relayed")
	}
	awaitCancelled(t, ended, "the proxy's timeout")
}

// A server stream whose server sends one message and then waits: the
// proxy relays that message at once (it ends a read with a whole message
// and nothing more), not when the next one begins.
func TestTripleServerStreamFirstMessageAlone(t *testing.T) {
	proceed := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	s.RegisterService(&grpc.ServiceDesc{ServiceName: grpcService, HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{StreamName: "Count", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			if err := ss.RecvMsg(new(wrapperspb.StringValue)); err != nil {
				return err
			}
			if err := ss.SendMsg(wrapperspb.String("first")); err != nil {
				return err
			}
			select {
			case <-proceed:
			case <-ss.Context().Done():
				return ss.Context().Err()
			}
			return ss.SendMsg(wrapperspb.String("second"))
		}}}}, struct{}{})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)

	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: ln.Addr().String()}
	startProxyWith(t, r.resources(t))
	cc, err := grpc.NewClient(r.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := openCount(t, ctx, cc, "go")
	first := make(chan error, 1)
	out := new(wrapperspb.StringValue)
	go func() { first <- cs.RecvMsg(out) }()
	select {
	case err := <-first:
		if err != nil || out.GetValue() != "first" {
			t.Fatalf("first message: %q, %v", out.GetValue(), err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the first message did not reach the client while the server waited to send the second")
	}
	close(proceed)
	if err := cs.RecvMsg(out); err != nil || out.GetValue() != "second" {
		t.Fatalf("second message: %q, %v", out.GetValue(), err)
	}
	if err := cs.RecvMsg(out); err != io.EOF {
		t.Fatalf("after two messages: %v, want the end of the stream", err)
	}
}

// openCount opens a Count stream on cc asking for req ("N SIZE", or a
// word the counter takes) and half-closes it.
func openCount(t *testing.T, ctx context.Context, cc *grpc.ClientConn, req string) grpc.ClientStream {
	t.Helper()
	cs, err := cc.NewStream(ctx, countStream, "/"+grpcService+"/Count")
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.SendMsg(wrapperspb.String(req)); err != nil {
		t.Fatal(err)
	}
	_ = cs.CloseSend()
	return cs
}

// An upstream that resets a server stream it is answering (RST_STREAM
// INTERNAL_ERROR after two messages: a plain HTTP/2 server whose handler
// aborts) has the client's stream reset the same way: the client, which
// has the response's headers and messages already, gets the reset itself
// rather than a status the proxy makes up.
func TestTripleServerStreamUpstreamReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var proto http.Protocols
	proto.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &proto, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("content-type", "application/grpc")
		w.WriteHeader(http.StatusOK)
		for _, s := range []string{"one", "two"} {
			b, _ := proto2.Marshal(wrapperspb.String(s))
			frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(b)))
			_, _ = w.Write(append(frame, b...))
		}
		w.(http.Flusher).Flush()
		time.Sleep(100 * time.Millisecond) // both messages reach the client first
		panic(http.ErrAbortHandler)        // RST_STREAM INTERNAL_ERROR
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: ln.Addr().String()}
	startProxyWith(t, r.resources(t))
	cc, err := grpc.NewClient(r.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cs := openCount(t, watchdog(t, 30*time.Second), cc, "go")
	out := new(wrapperspb.StringValue)
	for _, want := range []string{"one", "two"} {
		if err := cs.RecvMsg(out); err != nil || out.GetValue() != want {
			t.Fatalf("message %q, %v; want %q", out.GetValue(), err, want)
		}
	}
	err = cs.RecvMsg(out)
	if st := grpcstatus.Convert(err); st.Code() != codes.Internal || !strings.Contains(st.Message(), "RST_STREAM") || !strings.Contains(st.Message(), "INTERNAL_ERROR") {
		t.Fatalf("after the messages: %v; want the upstream's RST_STREAM INTERNAL_ERROR", err)
	}
}
