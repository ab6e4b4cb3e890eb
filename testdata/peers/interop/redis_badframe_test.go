package interop

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRedisMalformedFrameClosesOneConnection: a client whose command
// cannot be decoded has its connection closed (the codec has no reply
// for it), the
// decode-error counter counts it, and another client on the same
// listener is served before and after (in either I/O mode,
// METAMESH_IO_MODE).
func TestRedisMalformedFrameClosesOneConnection(t *testing.T) {
	s := startRedis(t)
	good := s.client(t)
	ctx := context.Background()
	noErr(t, good.Set(ctx, "users:bad-frame", "before", 0).Err())

	nc, err := net.Dial("tcp", s.listen)
	noErr(t, err)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := nc.Write([]byte("*1\r\n$-7\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, err := nc.Read(make([]byte, 64)); !errors.Is(err, io.EOF) {
		t.Fatalf("read %d bytes, %v after the bad frame, want the connection closed (EOF)", n, err)
	}
	if got := testutil.ToFloat64(s.srv.Metrics().DecodeErrors.WithLabelValues("redis", "downstream")); got != 1 {
		t.Fatalf("decode errors counter = %v, want 1", got)
	}
	if got := val[string](t, good.Get(ctx, "users:bad-frame")); got != "before" {
		t.Fatalf("the other client read %q after the bad frame, want before", got)
	}
}
