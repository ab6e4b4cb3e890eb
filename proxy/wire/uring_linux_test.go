//go:build linux

package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// testRing is an io_uring, or the test skips saying why the kernel gave
// none (the loops then write as before).
func testRing(t *testing.T) *ioRing {
	t.Helper()
	r, err := newIORing()
	if err != nil {
		t.Skipf("no io_uring here, so the event loops write each socket on its own: %v", err)
	}
	t.Cleanup(r.close)
	return r
}

// socketPair is a connected pair of non-blocking stream sockets.
func socketPair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fds[0]); _ = syscall.Close(fds[1]) })
	return fds[0], fds[1]
}

// readAvailable reads what fd holds now.
func readAvailable(t *testing.T, fd int) []byte {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if n > 0 {
			got = append(got, buf[:n]...)
		}
		if err == syscall.EAGAIN || n == 0 {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSendRingSends: one submission sends each socket its own bytes, skips
// a send already failed, and reports what each took.
func TestSendRingSends(t *testing.T) {
	r := testRing(t)
	var sends []ringOp
	var peers []int
	for i := range 3 {
		a, b := socketPair(t)
		sends = append(sends, ringOp{fd: a, p: bytes.Repeat([]byte{byte('a' + i)}, 100+i)})
		peers = append(peers, b)
	}
	failed := errors.New("closed before the turn's write")
	sends[1].err = failed
	r.submit(sends)
	if r.enters.Load() != 1 {
		t.Fatalf("%d io_uring_enter calls for one submission, want 1", r.enters.Load())
	}
	for i, s := range sends {
		got := readAvailable(t, peers[i])
		if i == 1 {
			if s.err != failed || s.done || len(got) != 0 {
				t.Fatalf("the failed send: err %v, done %v, %d bytes arrived; want it left alone", s.err, s.done, len(got))
			}
			continue
		}
		if s.err != nil || !s.done || s.n != len(s.p) || !bytes.Equal(got, s.p) {
			t.Fatalf("send %d: n %d of %d, err %v, done %v, %d bytes arrived", i, s.n, len(s.p), s.err, s.done, len(got))
		}
	}
}

// TestSendRingFullSocket: a send the socket takes only part of reports the
// bytes that went, exactly as many as the peer then reads, and a send to a
// socket with no room reports none without an error, as a non-blocking
// write(2) does; the writer keeps the rest for its flushing goroutine.
func TestSendRingFullSocket(t *testing.T) {
	r := testRing(t)
	a, b := socketPair(t)
	if err := syscall.SetsockoptInt(a, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4<<20)
	for i := range p {
		p[i] = byte(i * 7)
	}
	sends := []ringOp{{fd: a, p: p}}
	r.submit(sends)
	n := sends[0].n
	if sends[0].err != nil || n <= 0 || n >= len(p) {
		t.Fatalf("a 4 MiB send to a 4 KiB buffer: n %d, err %v; want part of it", n, sends[0].err)
	}
	sends = []ringOp{{fd: a, p: p[n:]}}
	r.submit(sends)
	if sends[0].err != nil || sends[0].n != 0 || !sends[0].done {
		t.Fatalf("a send to the full socket: n %d, err %v, done %v; want 0 bytes and no error", sends[0].n, sends[0].err, sends[0].done)
	}
	if got := readAvailable(t, b); !bytes.Equal(got, p[:n]) {
		t.Fatalf("the peer read %d bytes, the send said %d went", len(got), n)
	}
}

// TestSendRingPeerGone: a send to a socket whose peer closed fails with
// write's error, and the ring goes on serving.
func TestSendRingPeerGone(t *testing.T) {
	r := testRing(t)
	a, b := socketPair(t)
	_ = syscall.Close(b)
	c, d := socketPair(t)
	sends := []ringOp{{fd: a, p: []byte("lost")}, {fd: c, p: []byte("kept")}}
	r.submit(sends)
	if !errors.Is(sends[0].err, syscall.EPIPE) {
		t.Fatalf("a send to a closed peer: err %v, want EPIPE", sends[0].err)
	}
	if sends[1].err != nil || sends[1].n != 4 || string(readAvailable(t, d)) != "kept" {
		t.Fatalf("the other send: n %d, err %v", sends[1].n, sends[1].err)
	}
	if r.broken {
		t.Fatal("a failed send broke the ring")
	}
}

// tcpPairs returns n connected loopback TCP pairs.
func tcpPairs(t testing.TB, n int) (local, remote []net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for range n {
		l, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		r, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close(); _ = r.Close() })
		local, remote = append(local, l), append(remote, r)
	}
	return local, remote
}

// TestTurnWritesShareOneCall: a turn's writers with bytes go out in one
// io_uring_enter, each writer once though two batches hold it; a lone
// writer is written with write(2); a writer whose socket closed fails as
// its Flush would, without holding up the others.
func TestTurnWritesShareOneCall(t *testing.T) {
	tw := newTurnWrites(testRing(t))
	local, remote := tcpPairs(t, 4)
	var ws []*Writer
	for _, c := range local {
		ws = append(ws, NewWriter(c, 0))
	}
	queue := func(w *Writer, s string) {
		if err := w.Queue(func(dst []byte) []byte { return append(dst, s...) }); err != nil {
			t.Fatal(err)
		}
	}
	var b1, b2 Batch
	for i, w := range ws[:3] {
		queue(w, fmt.Sprintf("turn %d;", i))
		b1.Add(w)
	}
	b2.Add(ws[0])
	tw.add(&b1)
	tw.add(&b2)
	tw.flush()
	if got := tw.ring.enters.Load(); got != 1 {
		t.Fatalf("%d io_uring_enter calls for one turn of three writers, want 1", got)
	}
	for i, r := range remote[:3] {
		want := fmt.Sprintf("turn %d;", i)
		got := make([]byte, len(want))
		_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
			t.Fatalf("writer %d's peer read %q (%v), want %q", i, got, err, want)
		}
	}

	queue(ws[3], "alone")
	b1.Add(ws[3])
	tw.add(&b1)
	tw.flush()
	if got := tw.ring.enters.Load(); got != 1 {
		t.Fatalf("a lone writer went through the ring (%d calls in all)", got)
	}

	_ = local[1].Close()
	queue(ws[1], "lost")
	queue(ws[2], "kept")
	b1.Add(ws[1])
	b1.Add(ws[2])
	tw.add(&b1)
	tw.flush()
	if err := ws[1].Queue(func(dst []byte) []byte { return dst }); err == nil {
		t.Fatal("the writer of a closed socket takes more frames after the turn")
	}
	got := make([]byte, 4)
	_ = remote[2].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(remote[2], got); err != nil || string(got) != "kept" {
		t.Fatalf("the other writer's peer read %q (%v)", got, err)
	}
}

// TestTurnWritesMoreThanARing: a turn with more writers than one
// submission takes sends them in as many submissions as needed.
func TestTurnWritesMoreThanARing(t *testing.T) {
	tw := newTurnWrites(testRing(t))
	n := ringEntries + 2
	local, remote := tcpPairs(t, n)
	tw.add(queueEach(t, local, "%04d;"))
	tw.flush()
	if got := tw.ring.enters.Load(); got != 2 {
		t.Fatalf("%d io_uring_enter calls for %d writers, want 2", got, n)
	}
	readEach(t, remote, "%04d;")
}

// queueEach gives each of conns a Writer with fmt.Sprintf(format, i)
// queued, all in one Batch.
func queueEach(t *testing.T, conns []net.Conn, format string) *Batch {
	t.Helper()
	var b Batch
	for i, c := range conns {
		w := NewWriter(c, 0)
		if err := w.Queue(func(dst []byte) []byte { return fmt.Appendf(dst, format, i) }); err != nil {
			t.Fatal(err)
		}
		b.Add(w)
	}
	return &b
}

// readEach reads fmt.Sprintf(format, i) from each of conns.
func readEach(t *testing.T, conns []net.Conn, format string) {
	t.Helper()
	for i, c := range conns {
		want := fmt.Sprintf(format, i)
		got := make([]byte, len(want))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("writer %d's peer read %q (%v), want %q", i, got, err, want)
		}
	}
}

// TestTurnWritesRingBreaks: when io_uring_enter itself fails, the turn's
// writes are not lost: each writer's bytes go out as a write that found
// the socket full would (its flushing goroutine), and the loop stops
// using the ring.
func TestTurnWritesRingBreaks(t *testing.T) {
	r := testRing(t)
	fd := r.fd
	r.fd = -1 // io_uring_enter fails with EBADF
	t.Cleanup(func() { r.fd = fd })
	tw := newTurnWrites(r)
	local, remote := tcpPairs(t, 3)
	tw.add(queueEach(t, local, "turn %d;"))
	tw.flush()
	if !r.broken {
		t.Fatal("a failed io_uring_enter left the ring in use")
	}
	readEach(t, remote, "turn %d;")
}
