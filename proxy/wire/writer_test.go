package wire_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/proxy/wire"
)

// gatedConn counts Writes and holds the first one until open is closed,
// so Appends made meanwhile pile up and must go out coalesced.
type gatedConn struct {
	net.Conn
	open   chan struct{}
	writes atomic.Int32
}

func (c *gatedConn) Write(p []byte) (int, error) {
	if c.writes.Add(1) == 1 {
		<-c.open
	}
	return c.Conn.Write(p)
}

// readAll drains conn in the background; the result arrives on the channel.
func readAll(conn net.Conn) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		out <- b
	}()
	return out
}

func recv(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for the peer to read")
		return nil
	}
}

func appendFrame(w *wire.Writer, i int) error {
	return w.Append(func(dst []byte) []byte { return frame(dst, payload(i, 1+i%50)) })
}

func TestWriterCoalescesInOrder(t *testing.T) {
	local, remote := net.Pipe()
	gc := &gatedConn{Conn: local, open: make(chan struct{})}
	w := wire.NewWriter(gc, 0)
	got := readAll(remote)

	const n = 1000
	var want []byte
	for i := range n {
		if err := appendFrame(w, i); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		want = frame(want, payload(i, 1+i%50))
	}
	close(gc.open)
	w.Close()
	if b := recv(t, got); !bytes.Equal(b, want) {
		t.Fatalf("peer read %d bytes, want %d in append order", len(b), len(want))
	}
	// The first Write held everything else back: the other 999 frames
	// went out in at most two more Writes (one flush, one drain on close).
	if ws := gc.writes.Load(); ws > 3 {
		t.Errorf("%d Writes for %d Appends, want ≤ 3", ws, n)
	}
}

func TestWriterMaxPending(t *testing.T) {
	tests := []struct {
		name string
		// stuck makes the peer never read, so the first flush blocks in
		// Write for good; otherwise one oversized Append trips the limit.
		stuck bool
	}{
		{"peer stopped reading", true},
		{"one oversized append", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, remote := net.Pipe()
			defer remote.Close()
			const limit = 4 << 10
			w := wire.NewWriter(local, limit)
			var got <-chan []byte
			if tt.stuck {
				if err := appendFrame(w, 0); err != nil {
					t.Fatal(err)
				}
			} else {
				got = readAll(remote)
			}
			errc := make(chan error, 1)
			go func() {
				if !tt.stuck {
					errc <- w.Append(func(dst []byte) []byte { return frame(dst, payload(0, limit)) })
					return
				}
				var err error
				for i := 0; err == nil && i < 100; i++ {
					err = w.Append(func(dst []byte) []byte { return frame(dst, payload(i, 2<<10)) })
				}
				errc <- err
			}()
			var err error
			select {
			case err = <-errc:
			case <-time.After(5 * time.Second):
				t.Fatal("Append over the limit did not return: the writer is stuck on a peer that does not read")
			}
			if err == nil || !strings.Contains(err.Error(), "pending") {
				t.Fatalf("Append over the limit returned %v, want a pending-bytes error", err)
			}
			select {
			case <-w.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("writer not done after exceeding the limit")
			}
			// The connection is closed: the peer sees EOF (or, stuck, a
			// closed pipe on its next read) and never the oversized bytes.
			if tt.stuck {
				_ = remote.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, rerr := remote.Read(make([]byte, 1)); !errors.Is(rerr, io.EOF) {
					t.Errorf("peer read after the limit: %v, want EOF", rerr)
				}
			} else if b := recv(t, got); len(b) != 0 {
				t.Errorf("peer received %d bytes of a frame over the limit", len(b))
			}
			if err2 := appendFrame(w, 1); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Append after the limit = %v, want %v", err2, err)
			}
		})
	}
}

func TestWriterClose(t *testing.T) {
	errCustom := errors.New("custom stop")
	tests := []struct {
		name    string
		close   func(w *wire.Writer)
		wantErr error
		// delivered: whether frames appended just before closing reach
		// the peer (graceful Close flushes; CloseWithError drops).
		delivered bool
	}{
		{"Close", func(w *wire.Writer) { w.Close() }, wire.ErrClosed, true},
		{"CloseWithError", func(w *wire.Writer) { w.CloseWithError(errCustom) }, errCustom, false},
		{"Close twice", func(w *wire.Writer) { w.Close(); w.CloseWithError(errCustom) }, wire.ErrClosed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, remote := net.Pipe()
			gc := &gatedConn{Conn: local, open: make(chan struct{})}
			w := wire.NewWriter(gc, 0)
			got := readAll(remote)
			var want []byte
			for i := range 10 {
				if err := appendFrame(w, i); err != nil {
					t.Fatal(err)
				}
				want = frame(want, payload(i, 1+i%50))
			}
			if tt.delivered {
				close(gc.open)
				tt.close(w)
			} else {
				// Close while the first flush is held: what it holds is
				// cut off, what is pending is dropped.
				done := make(chan struct{})
				go func() { tt.close(w); close(done) }()
				time.Sleep(10 * time.Millisecond)
				close(gc.open)
				<-done
			}
			select {
			case <-w.Done():
			default:
				t.Error("Done not closed after Close returned")
			}
			b := recv(t, got)
			if tt.delivered && !bytes.Equal(b, want) {
				t.Errorf("peer read %d bytes, want all %d appended before Close", len(b), len(want))
			}
			if !tt.delivered && len(b) >= len(want) {
				t.Errorf("peer read %d bytes after CloseWithError, want the pending frames dropped", len(b))
			}
			if err := appendFrame(w, 99); !errors.Is(err, tt.wantErr) {
				t.Errorf("Append after close = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// tcpPair returns the two ends of a loopback TCP connection. A *net.TCPConn
// lets the Writer write from the producer directly, which net.Pipe (no
// socket) does not, so the tests below run over both.
func tcpPair(t testing.TB) (local, remote net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	local, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	remote = <-accepted
	if remote == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = local.Close(); _ = remote.Close() })
	return local, remote
}

var transports = []struct {
	name string
	pair func(testing.TB) (net.Conn, net.Conn)
}{
	{"pipe", func(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }},
	{"tcp", tcpPair},
}

func TestWriterTransports(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Run("concurrent appends arrive whole and in order", func(t *testing.T) {
				local, remote := tr.pair(t)
				w := wire.NewWriter(local, 0)
				got := readAll(remote)
				const producers, each = 8, 250
				var wg sync.WaitGroup
				for p := range producers {
					wg.Go(func() {
						for i := range each {
							id := p*each + i
							size := frameSize(id)
							if err := w.Append(func(dst []byte) []byte { return frame(dst, payload(id, size)) }); err != nil {
								t.Errorf("Append: %v", err)
								return
							}
						}
					})
				}
				wg.Wait()
				w.Close()
				frames, err := collect(bytes.NewReader(recv(t, got)), lenCodec{})
				if !errors.Is(err, io.EOF) {
					t.Fatalf("reading back: %v", err)
				}
				if len(frames) != producers*each {
					t.Fatalf("%d frames, want %d", len(frames), producers*each)
				}
				next := make([]int, producers)
				for _, f := range frames {
					p := -1
					for q := range producers {
						if next[q] == each {
							continue
						}
						id := q*each + next[q]
						if len(f) == frameSize(id) && bytes.Equal(f, payload(id, len(f))) {
							p = q
							break
						}
					}
					if p < 0 {
						t.Fatalf("a %d-byte frame is not the next frame of any producer", len(f))
					}
					next[p]++
				}
			})

			t.Run("Close delivers everything appended", func(t *testing.T) {
				local, remote := tr.pair(t)
				w := wire.NewWriter(local, 0)
				got := readAll(remote)
				var want []byte
				for i := range 200 {
					if err := w.Append(func(dst []byte) []byte { return frame(dst, payload(i, 4<<10)) }); err != nil {
						t.Fatal(err)
					}
					want = frame(want, payload(i, 4<<10))
				}
				w.Close()
				if b := recv(t, got); !bytes.Equal(b, want) {
					t.Errorf("peer read %d bytes, want %d", len(b), len(want))
				}
				if err := appendFrame(w, 0); !errors.Is(err, wire.ErrClosed) {
					t.Errorf("Append after Close = %v, want ErrClosed", err)
				}
			})

			t.Run("peer not reading hits maxPending", func(t *testing.T) {
				local, remote := tr.pair(t)
				const limit = 64 << 10
				w := wire.NewWriter(local, limit)
				errc := make(chan error, 1)
				go func() {
					// Far more than socket buffers hold.
					var err error
					for i := 0; err == nil && i < 64<<10; i++ {
						err = w.Append(func(dst []byte) []byte { return frame(dst, payload(i, 2<<10)) })
					}
					errc <- err
				}()
				var err error
				select {
				case err = <-errc:
				case <-time.After(10 * time.Second):
					t.Fatal("Appends to a peer that does not read never failed")
				}
				if err == nil || !strings.Contains(err.Error(), "pending") {
					t.Fatalf("Append = %v, want a pending-bytes error", err)
				}
				select {
				case <-w.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("writer not done after exceeding the limit")
				}
				// The peer sees the stream end rather than hang.
				_ = remote.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, rerr := io.Copy(io.Discard, remote); rerr != nil && !errors.Is(rerr, io.ErrClosedPipe) && !isReset(rerr) {
					t.Errorf("peer read after the limit: %v, want EOF", rerr)
				}
				if err2 := appendFrame(w, 1); err2 == nil {
					t.Error("Append after the limit succeeded")
				}
			})

			t.Run("peer gone", func(t *testing.T) {
				local, remote := tr.pair(t)
				w := wire.NewWriter(local, 0)
				_ = remote.Close()
				deadline := time.Now().Add(10 * time.Second)
				var err error
				for err == nil && time.Now().Before(deadline) {
					err = w.Append(func(dst []byte) []byte { return frame(dst, payload(0, 1<<10)) })
					if err == nil {
						time.Sleep(time.Millisecond)
					}
				}
				if err == nil || errors.Is(err, wire.ErrClosed) {
					t.Fatalf("Append to a closed peer = %v, want the write error", err)
				}
				select {
				case <-w.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("writer did not stop after a write error")
				}
			})
		})
	}
}

// frameSize is mostly small, sometimes large enough to fill a socket
// buffer and leave a partial write.
func frameSize(id int) int {
	if id%97 == 0 {
		return 200 << 10
	}
	return 1 + id%50
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// countingConn counts Writes.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestWriterQueueSoonSendsWithinDelay: what QueueSoon queued goes out by
// itself when no Flush comes.
func TestWriterQueueSoonSendsWithinDelay(t *testing.T) {
	local, remote := net.Pipe()
	w := wire.NewWriter(local, 0)
	defer w.Close()
	if err := w.QueueSoon(func(dst []byte) []byte { return append(dst, "ack"...) }, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 3)
		_, _ = io.ReadFull(remote, b)
		got <- b
	}()
	if b := recv(t, got); string(b) != "ack" {
		t.Fatalf("peer read %q, want ack", b)
	}
}

// TestWriterQueueSoonRidesNextFlush: what QueueSoon queued goes out with
// the next frames flushed, in one write, before its delay.
func TestWriterQueueSoonRidesNextFlush(t *testing.T) {
	local, remote := net.Pipe()
	cc := &countingConn{Conn: local}
	w := wire.NewWriter(cc, 0)
	got := readAll(remote)
	if err := w.QueueSoon(func(dst []byte) []byte { return append(dst, "ack,"...) }, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(func(dst []byte) []byte { return append(dst, "reply"...) }); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if b := recv(t, got); string(b) != "ack,reply" {
		t.Fatalf("peer read %q, want ack,reply", b)
	}
	if n := cc.writes.Load(); n != 1 {
		t.Errorf("%d writes, want 1", n)
	}
}
