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

func TestWriterConcurrentAppends(t *testing.T) {
	local, remote := net.Pipe()
	w := wire.NewWriter(local, 0)
	got := readAll(remote)
	const producers, each = 8, 200
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				id := p*each + i
				if err := appendFrame(w, id); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	w.Close()
	// Every frame arrives whole (none interleaved with another), and each
	// producer's frames in its own order.
	frames, err := collect(bytes.NewReader(recv(t, got)), lenCodec{})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("reading back: %v", err)
	}
	if len(frames) != producers*each {
		t.Fatalf("%d frames, want %d", len(frames), producers*each)
	}
	next := make([]int, producers)
	for _, f := range frames {
		found := false
		for p := range producers {
			id := p*each + next[p]
			if next[p] < each && bytes.Equal(f, payload(id, 1+id%50)) {
				next[p]++
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("frame %x is not the next frame of any producer", f)
		}
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

func TestWriterPeerGone(t *testing.T) {
	local, remote := net.Pipe()
	w := wire.NewWriter(local, 0)
	_ = remote.Close()
	if err := appendFrame(w, 0); err != nil {
		t.Fatalf("first Append: %v (the write fails later, in the flush)", err)
	}
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("writer did not stop after a write error")
	}
	if err := appendFrame(w, 1); err == nil || errors.Is(err, wire.ErrClosed) {
		t.Errorf("Append after a write error = %v, want the write error", err)
	}
}
