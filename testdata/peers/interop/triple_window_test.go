package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// Messages larger than grpc-go's 64 KiB initial windows, both ways
// through the proxy: the proxy sends no more DATA than its peer's stream
// and connection windows allow, and the rest as the peer's WINDOW_UPDATEs
// come (without it grpc-go resets the stream with FLOW_CONTROL_ERROR).
func TestTripleLargeMessages(t *testing.T) {
	r := tripleRoutes{Listen: harness.FreeAddr(t), V1: "127.0.0.1:1", V2: "127.0.0.1:1", GRPC: startGRPCEcho(t)}
	startProxyWith(t, r.resources(t))
	cc := limitsClient(t, r.Listen)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range []int{60 << 10, 200 << 10, 1 << 20} {
		in, out := wrapperspb.String(strings.Repeat("x", n)), new(wrapperspb.StringValue)
		if err := cc.Invoke(ctx, "/"+grpcService+"/Echo", in, out); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if want := in.GetValue() + "|metamesh"; out.GetValue() != want {
			t.Fatalf("%d bytes: a reply of %d bytes, want %d", n, len(out.GetValue()), len(want))
		}
	}
	// Several at once share the connection windows.
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			in, out := wrapperspb.String(strings.Repeat("y", 200<<10)), new(wrapperspb.StringValue)
			err := cc.Invoke(ctx, "/"+grpcService+"/Echo", in, out)
			if err == nil && out.GetValue() != in.GetValue()+"|metamesh" {
				err = fmt.Errorf("a reply of %d bytes", len(out.GetValue()))
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent 200 KiB call: %v", err)
		}
	}
}
