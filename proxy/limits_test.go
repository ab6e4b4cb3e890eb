package proxy

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
)

// dubboHeader is the 16-byte header of a two-way hessian2 request with
// the given ID announcing a body of bodyLen bytes.
func dubboHeader(id uint64, bodyLen uint32) []byte {
	h := []byte{0xda, 0xbb, 0x80 | 0x40 | 2, 0}
	h = binary.BigEndian.AppendUint64(h, id)
	return binary.BigEndian.AppendUint32(h, bodyLen)
}

// expectClosed waits for the proxy to close nc: an end of input, or a
// reset when the proxy closed with bytes of nc's unread.
func expectClosed(t testing.TB, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, nc)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("expected the proxy to close the connection, got %v", err)
	}
}

func closedCount(srv *Server, reason string) float64 {
	return testutil.ToFloat64(srv.Metrics().DownstreamCxClosed.WithLabelValues("dubbo", reason))
}

// TestFrameTimeoutClosesSlowSenders: a client that sends half a header
// and stalls is closed once the frame timeout runs out, and counted.
func TestFrameTimeoutClosesSlowSenders(t *testing.T) {
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}})
	srv.SetLimits(Limits{FrameTimeout: 200 * time.Millisecond, IdleTimeout: time.Hour})
	slow := dial(t, addr)
	slow.send(dubboHeader(1, 100)[:8])
	expectEOF(t, slow.nc)
	if got := closedCount(srv, "frame_timeout"); got != 1 {
		t.Fatalf("frame_timeout closes = %v, want 1", got)
	}
	if status, _ := dial(t, addr).call(2, svc, "m"); status != 20 {
		t.Fatalf("another client: status %d", status)
	}
}

// TestIdleTimeout: a client that sends nothing is closed after the idle
// timeout; one waiting for a reply is not.
func TestIdleTimeout(t *testing.T) {
	up := startEcho(t, "v1")
	up.delay.Store(int64(2 * time.Second))
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}})
	srv.SetLimits(Limits{IdleTimeout: 200 * time.Millisecond})
	busy, idle := dial(t, addr), dial(t, addr)
	type result struct {
		status byte
		value  string
	}
	done := make(chan result, 1)
	go func() {
		status, value := busy.call(1, svc, "slow")
		done <- result{status, value}
	}()
	expectEOF(t, idle.nc)
	waitUntil(t, 5*time.Second, "idle closes counted", func() bool { return closedCount(srv, "idle_timeout") >= 1 })
	// The busy client's request is still in flight (2 s): it must not
	// have been closed. (Once answered, it idles out in turn.)
	if got := closedCount(srv, "idle_timeout"); got != 1 {
		t.Fatalf("idle_timeout closes = %v, want 1 (the waiting client was closed too)", got)
	}
	if r := <-done; r.status != 20 || !strings.HasPrefix(r.value, "v1|slow") {
		t.Fatalf("a request slower than the idle timeout: status %d %q", r.status, r.value)
	}
}

// TestConnectionLimit: a listener at its limit closes the next connection
// at once and counts it; a slot freed is taken again.
func TestConnectionLimit(t *testing.T) {
	for _, lim := range []Limits{{MaxConnections: 2}, {MaxTotalConnections: 2}} {
		testConnectionLimit(t, lim)
	}
}

func testConnectionLimit(t *testing.T, lim Limits) {
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}})
	srv.SetLimits(lim)
	a, b := dial(t, addr), dial(t, addr)
	for i, c := range []*client{a, b} {
		if status, _ := c.call(uint64(i+1), svc, "m"); status != 20 {
			t.Fatalf("client %d: status %d", i, status)
		}
	}
	over := dial(t, addr)
	expectEOF(t, over.nc)
	if got := testutil.ToFloat64(srv.Metrics().DownstreamCxOverflow.WithLabelValues("dubbo")); got != 1 {
		t.Fatalf("%+v: overflow counter = %v, want 1", lim, got)
	}
	_ = a.nc.Close()
	waitUntil(t, 5*time.Second, "a slot freed", func() bool {
		return testutil.ToFloat64(srv.Metrics().DownstreamCx.WithLabelValues("dubbo")) == 1
	})
	if status, _ := dial(t, addr).call(3, svc, "m"); status != 20 {
		t.Fatalf("after a slot freed: status %d", status)
	}
}

// TestBufferedBytesCap: clients that announce large frames and don't
// finish them hold at most the cap; the one that would pass it is closed.
func TestBufferedBytesCap(t *testing.T) {
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}})
	srv.SetLimits(Limits{MaxBufferedBytes: 600 << 10})
	partial := append(dubboHeader(1, 1<<20), make([]byte, 200<<10)...)
	first := dial(t, addr)
	first.send(partial)
	// The first holds a 256 KiB buffer; the second's would pass 600 KiB.
	waitUntil(t, 5*time.Second, "the first frame buffered", func() bool { return srv.limits.Load().budget.Used() == 256<<10 })
	second := dial(t, addr)
	second.send(partial)
	expectClosed(t, second.nc)
	if got := closedCount(srv, "buffer_limit"); got != 1 {
		t.Fatalf("buffer_limit closes = %v, want 1", got)
	}
	if used := srv.limits.Load().budget.Used(); used != 256<<10 {
		t.Fatalf("budget holds %d bytes, want the first client's 256 KiB", used)
	}
	_ = first.nc.Close()
	waitUntil(t, 5*time.Second, "the first buffer given back", func() bool { return srv.limits.Load().budget.Used() == 0 })
}

// TestOversizeFrameAnswered: a Dubbo request over the size limit gets an
// error reply naming the limit before the connection closes.
func TestOversizeFrameAnswered(t *testing.T) {
	up := startEcho(t, "v1")
	_, addr := startProxy(t, setup{V1: []string{up.addr()}})
	c := dial(t, addr)
	c.send(dubboHeader(42, dubbo.DefaultMaxBodyBytes+1))
	kind, id, status, value, err := c.read()
	if err != nil {
		t.Fatalf("no reply to an oversize frame: %v", err)
	}
	if kind != protocols.KindError || id != 42 || status != dubbo.StatusBadRequest || !strings.Contains(value, "exceeds limit 8388608") {
		t.Fatalf("reply %v id %d status %d %q, want BAD_REQUEST to 42 naming the limit", kind, id, status, value)
	}
	expectEOF(t, c.nc)
}

// The default total limit leaves a tenth of the open-file limit to the
// proxy's own connections and files.
func TestDefaultTotalConnections(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skipf("no RLIMIT_NOFILE here: %v", err)
	}
	got := DefaultMaxTotalConnections()
	if want := int(min(rl.Cur, 1<<30) * 9 / 10); got != want || got <= 0 {
		t.Fatalf("DefaultMaxTotalConnections() = %d with an open-file limit of %d, want %d", got, rl.Cur, want)
	}
}
