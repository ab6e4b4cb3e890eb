package wire_test

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// queued returns how many bytes wait unread in c's receive queue.
func queued(t testing.TB, c net.Conn) int {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	if err := raw.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

// waitQueued waits (bounded) until c has unread bytes.
func waitQueued(t testing.TB, c net.Conn) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); queued(t, c) == 0; {
		if time.Now().After(deadline) {
			t.Error("bytes written to the peer never reached the socket")
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// runReader runs rd in a goroutine and returns its result's channel.
func runReader(rd *wire.Reader, handle func(*protocols.Message) error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- rd.Run(handle, nil) }()
	return done
}

// await returns the loop's result, failing the test if it does not come.
func await(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("the read loop did not return: %s", what)
		return nil
	}
}

// TestReaderWakesForBytesSentWhileHandling: the read loop waits for the
// socket without reading until EAGAIN after a short read (readfd.go);
// bytes that arrive while it handles the frames of that read must still
// wake it. Each frame's handler has the peer send the next one and waits
// until it is in the socket, so the loop's next step is the wait: had it
// cleared the socket's readiness after the read, it would wait forever.
func TestReaderWakesForBytesSentWhileHandling(t *testing.T) {
	local, remote := tcpPair(t)
	wakesForBytesSentWhileHandling(t, local, remote)
}

// wakesForBytesSentWhileHandling runs a Reader on local whose handler has
// remote send the next frame and waits until it is in local's socket
// before returning, 50 times: a read loop that lost the socket's readiness
// after a short read waits forever.
func wakesForBytesSentWhileHandling(t *testing.T, local, remote net.Conn) {
	t.Helper()
	const frames = 50
	send := func(i int) {
		if _, err := remote.Write(frame(nil, payload(i, 8))); err != nil {
			t.Error(err)
		}
	}
	n := 0
	done := runReader(wire.NewReader(local, lenCodec{}, wire.ReadOptions{}), func(*protocols.Message) error {
		n++
		if n == frames {
			return errStop
		}
		send(n)
		waitQueued(t, local)
		return nil
	})
	send(0)
	if err := await(t, done, "it did not wake for bytes sent while it handled a frame"); !errors.Is(err, errStop) {
		t.Fatalf("Run returned %v after %d frames, want all %d", err, n, frames)
	}
}

var errStop = errors.New("test: stop")

// TestReaderHandleClosesItsWriter: a handler may close the connection it
// reads from through its Writer (a decode error's reply, a quit): on a
// socket the handler runs inside the read, where closing the socket
// would wait for the handler, so the Writer must not wait for that.
func TestReaderHandleClosesItsWriter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(*wire.Writer)
	}{
		{"Close", (*wire.Writer).Close},
		{"CloseWithError", func(w *wire.Writer) { w.CloseWithError(errStop) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			local, remote := tcpPair(t)
			w := wire.NewWriter(local, 0)
			closed := make(chan struct{})
			done := runReader(wire.NewReader(local, lenCodec{}, wire.ReadOptions{}), func(*protocols.Message) error {
				tc.close(w)
				close(closed)
				return nil
			})
			if _, err := remote.Write(frame(nil, []byte("bye"))); err != nil {
				t.Fatal(err)
			}
			select {
			case <-closed:
			case <-time.After(20 * time.Second):
				t.Fatal("closing the Writer from the read loop's handler did not return")
			}
			_ = await(t, done, "after its handler closed the connection")
			_ = remote.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := remote.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Errorf("the peer read %v, want io.EOF", err)
			}
		})
	}
}

// deadlineCounter counts the read deadlines set on a TCP connection
// (the Reader still reads it as a socket: SyscallConn is promoted).
type deadlineCounter struct {
	*net.TCPConn
	sets    atomic.Int32
	cleared atomic.Bool // the last deadline set was none
}

func (c *deadlineCounter) SetReadDeadline(t time.Time) error {
	c.sets.Add(1)
	c.cleared.Store(t.IsZero())
	return c.TCPConn.SetReadDeadline(t)
}

// TestReaderIdleDeadlineSetOnce: frames that arrive one at a time, each
// whole, do not move the read deadline: the idle deadline is set once,
// and moved only when it fires after traffic (deadline.go).
func TestReaderIdleDeadlineSetOnce(t *testing.T) {
	local, remote := tcpPair(t)
	conn := &deadlineCounter{TCPConn: local.(*net.TCPConn)}
	const frames = 200
	start := time.Now()
	handled := make(chan struct{})
	done := runReader(wire.NewReader(conn, lenCodec{}, wire.ReadOptions{IdleTimeout: time.Hour, FrameTimeout: time.Hour}),
		func(*protocols.Message) error {
			handled <- struct{}{}
			return nil
		})
	for i := range frames {
		if _, err := remote.Write(frame(nil, payload(i, 32))); err != nil {
			t.Fatal(err)
		}
		select {
		case <-handled:
		case <-time.After(20 * time.Second):
			t.Fatalf("frame %d not handled", i)
		}
	}
	_ = remote.Close()
	if err := await(t, done, "after the peer closed"); !errors.Is(err, io.EOF) {
		t.Fatalf("Run returned %v, want io.EOF", err)
	}
	// Once for the idle deadline, and for the bound of a wait after a
	// short read once, then at most once per 50 ms (the unsure wait's
	// tick, deadline.go), and once back to the idle deadline.
	if n, most := conn.sets.Load(), 3+int32(time.Since(start)/(50*time.Millisecond)); n > most {
		t.Errorf("read deadline set %d times for %d frames read one at a time, want at most %d", n, frames, most)
	}
}

// TestReaderSeesFINThatCameWithBytes: a frame and the peer's FIN that
// arrive while the loop handles the frame before them share one poller
// event; the read that takes the frame is short and does not report the
// FIN. The loop must still end (an unsure wait, readfd.go), not wait for
// an event that never comes.
func TestReaderSeesFINThatCameWithBytes(t *testing.T) {
	local, remote := tcpPair(t)
	inside, release := make(chan struct{}), make(chan struct{})
	first := true
	done := runReader(wire.NewReader(local, lenCodec{}, wire.ReadOptions{}), func(*protocols.Message) error {
		if first {
			first = false
			close(inside)
			<-release
		}
		return nil
	})
	if _, err := remote.Write(frame(nil, payload(0, 32))); err != nil {
		t.Fatal(err)
	}
	<-inside
	if _, err := remote.Write(frame(nil, payload(1, 32))); err != nil {
		t.Fatal(err)
	}
	_ = remote.Close()
	time.Sleep(20 * time.Millisecond) // both reach the socket while the loop is busy
	close(release)
	if err := await(t, done, "after the peer sent a frame and closed"); !errors.Is(err, io.EOF) {
		t.Fatalf("Run returned %v, want io.EOF", err)
	}
}

// TestReaderIdleTimeoutAfterTraffic: traffic that lasts longer than the
// idle timeout keeps the connection (the first idle deadline fires during
// it and is moved past the last read), and the connection is closed once
// it has been idle for the timeout after the last frame.
func TestReaderIdleTimeoutAfterTraffic(t *testing.T) {
	local, remote := tcpPair(t)
	const idle = time.Second
	const frames = 15 // one per idle/10: 1.5 idle timeouts of traffic
	handled := make(chan struct{}, 1)
	done := runReader(wire.NewReader(local, lenCodec{}, wire.ReadOptions{IdleTimeout: idle}), func(*protocols.Message) error {
		handled <- struct{}{}
		return nil
	})
	var last time.Time
	for i := range frames {
		time.Sleep(idle / 10)
		last = time.Now()
		if _, err := remote.Write(frame(nil, payload(i, 32))); err != nil {
			t.Fatalf("frame %d: %v (the connection was closed during traffic)", i, err)
		}
		select {
		case <-handled:
		case err := <-done:
			t.Fatalf("Run returned %v at frame %d of %d, during traffic", err, i, frames)
		case <-time.After(20 * time.Second):
			t.Fatalf("frame %d not handled", i)
		}
	}
	if err := await(t, done, "the idle timeout did not end it"); !errors.Is(err, wire.ErrIdleTimeout) {
		t.Fatalf("Run returned %v, want ErrIdleTimeout", err)
	}
	if since := time.Since(last); since < idle {
		t.Errorf("closed %v after the last frame was sent, before the idle timeout (%v)", since, idle)
	}
}

// TestReaderUnsureWaitEnds: the bound of a wait after a short read, on a
// connection with no timeouts, is set, then cleared once a read has
// looked and found nothing (else the deadline, passed, would end every later wait at
// once and the loop would spin).
func TestReaderUnsureWaitEnds(t *testing.T) {
	local, remote := tcpPair(t)
	conn := &deadlineCounter{TCPConn: local.(*net.TCPConn)}
	handled := make(chan struct{}, 2)
	done := runReader(wire.NewReader(conn, lenCodec{}, wire.ReadOptions{}), func(*protocols.Message) error {
		handled <- struct{}{}
		return nil
	})
	for i := range 2 {
		if _, err := remote.Write(frame(nil, payload(i, 32))); err != nil {
			t.Fatal(err)
		}
		<-handled
		time.Sleep(250 * time.Millisecond) // the unsure wait's bound passes
		if n := conn.sets.Load(); n == 0 || !conn.cleared.Load() {
			t.Fatalf("after frame %d and a pause: read deadline set %d times, the last not cleared", i, n)
		}
	}
	_ = remote.Close()
	if err := await(t, done, "after the peer closed"); !errors.Is(err, io.EOF) {
		t.Fatalf("Run returned %v, want io.EOF", err)
	}
}

// TestReaderWakeAt: a flush that asks to be called again at a moment gets
// that call although nothing more is read, once; the loop then goes on
// reading. At 10 ms the wake comes while the wait after the first read is
// still unsure (its verifying read, up to 2 verifyTicks later, resets the
// deadline anyway); at 300 ms it comes after that read, with no other
// deadline in force, so the loop must clear the one that fired itself or
// its next read fails at once, again and again, and reads nothing.
func TestReaderWakeAt(t *testing.T) {
	for _, after := range []time.Duration{10 * time.Millisecond, 300 * time.Millisecond} {
		t.Run(after.String(), func(t *testing.T) { readerWakesAfter(t, after) })
	}
}

func readerWakesAfter(t *testing.T, after time.Duration) {
	local, remote := tcpPair(t)
	rd := wire.NewReader(local, lenCodec{}, wire.ReadOptions{})
	if !rd.CanWake() {
		t.Fatal("a socket's read loop can't wake")
	}
	flushes := make(chan int, 10)
	n := 0
	done := make(chan error, 1)
	go func() {
		done <- rd.Run(func(*protocols.Message) error { return nil }, func() {
			n++
			if n == 1 {
				rd.WakeAt(time.Now().Add(after))
			}
			flushes <- n
		})
	}()
	if _, err := remote.Write(frame(nil, payload(0, 32))); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 2; want++ {
		select {
		case got := <-flushes:
			if got != want {
				t.Fatalf("flush %d, want %d", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no flush %d", want)
		}
	}
	if _, err := remote.Write(frame(nil, payload(1, 32))); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-flushes:
		if got != 3 {
			t.Fatalf("flush %d after the next read, want 3", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no flush after the next read")
	}
	_ = remote.Close()
	if err := await(t, done, "after the peer closed"); !errors.Is(err, io.EOF) {
		t.Fatalf("Run returned %v, want io.EOF", err)
	}
}
