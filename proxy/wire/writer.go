// Package wire holds the connection plumbing shared by downstream and
// upstream connections: a read loop that decodes frames in place from a
// reused buffer, a writer that coalesces frames into few syscalls, and
// the event loops of the epoll I/O mode (Loop), which read a poll's
// sockets and send a turn's writes in one io_uring_enter each where the
// kernel allows.
package wire

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// ErrClosed is returned by Append after the writer has stopped.
var ErrClosed = errors.New("wire: connection closed")

// DefaultMaxPending bounds the bytes waiting to be written to one peer. A
// peer that stops reading is disconnected rather than buffered without end.
const DefaultMaxPending = 64 << 20

// Writer owns the write side of one connection. Producers append encoded
// frames under a mutex. The producer that finds no write in progress
// writes what has accumulated itself, with a non-blocking write: no
// goroutine hand-off on the common path, and a producer is never blocked
// by a slow peer. Bytes the socket won't take at once go to a flushing
// goroutine that waits for the peer.
type Writer struct {
	conn       net.Conn
	raw        syscall.RawConn // nil when conn is not a socket
	maxPending int

	mu       sync.Mutex
	pending  []byte // nil when empty: a pooled buffer only while bytes wait
	writing  bool   // someone holds the right to write to conn
	try      nonBlockingWrite
	closed   bool
	err      error
	flushing bool // a flushing goroutine runs
	stopped  bool // the connection is closed
	done     chan struct{}
	// soon flushes what QueueSoon queued if no Flush came first; armed
	// while it is set to.
	soon      *time.Timer
	soonArmed bool
}

// NewWriter returns the writer of conn. Its flushing goroutine runs only
// while bytes wait for a slow peer (or for the close): an idle connection
// costs no goroutine.
func NewWriter(conn net.Conn, maxPending int) *Writer {
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	w := &Writer{
		conn:       conn,
		maxPending: maxPending,
		done:       make(chan struct{}),
	}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
			w.try.fn = w.try.write
		}
	}
	return w
}

// Append queues frames and sends them (Queue, then Flush).
func (w *Writer) Append(encode func(dst []byte) []byte) error {
	if err := w.Queue(encode); err != nil {
		return err
	}
	w.Flush()
	return nil
}

// Queue lets encode append one or more frames to the pending bytes
// without sending them: a read loop queues every frame of one read, then
// flushes each writer it touched once (see Batch). encode runs under the
// writer's lock: it must only append to dst and return it.
func (w *Writer) Queue(encode func(dst []byte) []byte) error {
	w.mu.Lock()
	if w.closed {
		err := w.err
		w.mu.Unlock()
		return err
	}
	if w.pending == nil {
		w.pending = getBuf()[:0]
	}
	w.pending = encode(w.pending)
	if len(w.pending) > w.maxPending {
		n := len(w.pending)
		w.mu.Unlock()
		err := fmt.Errorf("wire: %d bytes pending for a peer that is not reading (limit %d)", n, w.maxPending)
		w.CloseWithError(err)
		return err
	}
	w.mu.Unlock()
	return nil
}

// AckDelay is how long the proxy lets a protocol's acknowledgements and
// credit wait for a write to share (QueueSoon): short next to any peer's
// timeout for them, long next to the time between a busy connection's
// writes.
const AckDelay = 2 * time.Millisecond

// QueueSoon queues frames as Queue does, to be sent by the next Flush,
// or within delay if none comes: frames that need not go out on their
// own, such as HTTP/2 acknowledgements while replies are on their way,
// then share the replies' write instead of costing the peer a read of
// their own.
func (w *Writer) QueueSoon(encode func(dst []byte) []byte, delay time.Duration) error {
	if err := w.Queue(encode); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.soonArmed || w.closed {
		return nil
	}
	w.soonArmed = true
	if w.soon == nil {
		w.soon = time.AfterFunc(delay, w.flushSoon)
	} else {
		w.soon.Reset(delay)
	}
	return nil
}

// takeLocked takes the pending bytes to write: what QueueSoon queued goes
// with them, so its timer is stopped.
func (w *Writer) takeLocked() []byte {
	out := w.pending
	w.pending = nil
	if w.soonArmed {
		w.soonArmed = false
		w.soon.Stop()
	}
	return out
}

func (w *Writer) flushSoon() {
	w.mu.Lock()
	w.soonArmed = false
	w.mu.Unlock()
	w.Flush()
}

// Flush sends what is pending. Unless a write is already in progress, the
// caller writes it itself without blocking, and goes on writing what others
// queue meanwhile; a caller that finds a write in progress leaves its bytes
// to the writer. What the socket won't take at once goes to the flushing
// goroutine.
func (w *Writer) Flush() {
	out, ok := w.takeWrite()
	for ok {
		n, err := w.tryWrite(out)
		out, ok = w.wrote(out, n, err)
	}
}

// takeWrite takes the right to write and the bytes to write: ok is false
// when there is nothing to write, a write is in progress (its holder sends
// these bytes too), or the bytes are the flushing goroutine's to send. The
// caller writes out without waiting and reports with wrote.
func (w *Writer) takeWrite() (out []byte, ok bool) {
	w.mu.Lock()
	if len(w.pending) == 0 || w.closed {
		if w.pending != nil && len(w.pending) == 0 {
			putBuf(w.pending)
			w.pending = nil
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			w.signal()
		}
		return nil, false
	}
	if w.raw == nil {
		w.mu.Unlock()
		w.signal()
		return nil, false
	}
	if w.writing {
		// The holder of the write right looks at the pending bytes again
		// when its write is done, and sends these too.
		w.mu.Unlock()
		return nil, false
	}
	w.writing = true
	out = w.takeLocked()
	w.mu.Unlock()
	return out, true
}

// wrote takes the outcome of writing out (n bytes went, err failed the
// connection) from the holder of the write right. When others queued
// bytes meanwhile and the socket took all of out, it returns them with ok
// true: the holder writes them too, from where it is, rather than wake a
// goroutine for them. Otherwise the right is given up: what the socket
// did not take goes to the flushing goroutine.
func (w *Writer) wrote(out []byte, n int, err error) (more []byte, ok bool) {
	w.mu.Lock()
	if err != nil && !w.closed {
		w.closed, w.err = true, err
	}
	if n < len(out) && err == nil {
		// The socket is full: put the rest back in front of what others
		// appended meanwhile, and let the flusher wait for the peer.
		rest := append(out[:0], out[n:]...)
		if more := w.pending; more != nil {
			w.pending = append(rest, more...)
			putBuf(more)
		} else {
			w.pending = rest
		}
		w.writing = false
		w.mu.Unlock()
		w.signal()
		return nil, false
	}
	putBuf(out)
	if len(w.pending) > 0 && !w.closed {
		more = w.takeLocked()
		w.mu.Unlock()
		return more, true
	}
	w.writing = false
	closed := w.closed
	w.mu.Unlock()
	if closed {
		w.signal()
	}
	return nil, false
}

// tryWrite writes as much of p as the socket takes without waiting. Only
// the holder of the write right calls it, so the scratch fields are its own.
func (w *Writer) tryWrite(p []byte) (int, error) {
	w.try.p, w.try.n, w.try.err = p, 0, nil
	err := w.raw.Write(w.try.fn)
	n, werr := w.try.n, w.try.err
	w.try.p = nil
	if werr == nil {
		werr = err
	}
	return n, werr
}

// nonBlockingWrite is the RawConn callback of tryWrite, built once per
// writer so a write allocates nothing.
type nonBlockingWrite struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func (t *nonBlockingWrite) write(fd uintptr) bool {
	for t.n < len(t.p) {
		n, err := sysWrite(int(fd), t.p[t.n:])
		if n > 0 {
			t.n += n
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if err != syscall.EAGAIN {
				t.err = err
			}
			break
		}
	}
	return true // never wait for writability: the flusher does that
}

// signal makes sure a flushing goroutine looks at the writer's state: a
// running one does before it exits (it exits only after finding nothing
// to do, under the lock), else one is started.
func (w *Writer) signal() {
	w.mu.Lock()
	if w.flushing || w.stopped {
		w.mu.Unlock()
		return
	}
	w.flushing = true
	w.mu.Unlock()
	go w.flushLoop()
}

// Close flushes what is pending, then closes the connection.
func (w *Writer) Close() { w.CloseWithError(ErrClosed) }

// CloseWithError stops the writer, closes the connection and makes later
// Appends return err. Pending bytes are still written when err is
// ErrClosed (a graceful close).
func (w *Writer) CloseWithError(err error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed, w.err = true, err
	if w.soonArmed {
		w.soonArmed = false
		w.soon.Stop()
	}
	w.mu.Unlock()
	if errors.Is(err, ErrClosed) {
		// Graceful: pending bytes get a bounded time to reach the peer.
		_ = w.conn.SetWriteDeadline(time.Now().Add(closeTimeout))
	} else {
		// Unblock a flush stuck on a peer that does not read (and the
		// connection's read loop).
		_ = w.conn.SetWriteDeadline(time.Now())
		w.shutdown()
	}
	w.signal()
	<-w.done
}

// closeTimeout bounds how long a graceful close waits for a slow peer.
const closeTimeout = 5 * time.Second

// Done is closed once the writer has stopped and the connection is shut
// down: the peer has seen the end and the connection's read loop ends.
// Closing the socket follows (see shutdown).
func (w *Writer) Done() <-chan struct{} { return w.done }

// shutdown ends both directions of the connection without closing it: on
// a socket, shutdown(2), which ends a read loop running a handler
// (readfd.go) without waiting for it, where close would wait for the
// handler to return, and never return if the handler is what closes. A
// connection that is not a socket is closed.
func (w *Writer) shutdown() {
	if w.raw == nil {
		_ = w.conn.Close()
		return
	}
	_ = w.raw.Control(func(fd uintptr) {
		_ = syscall.Shutdown(int(fd), syscall.SHUT_RDWR)
	})
}

func (w *Writer) flushLoop() {
	w.mu.Lock()
	for {
		if w.writing {
			// A producer holds the write right; it signals when done.
			break
		}
		if len(w.pending) > 0 && (!w.closed || errors.Is(w.err, ErrClosed)) {
			out := w.takeLocked()
			w.writing = true
			w.mu.Unlock()
			_, err := w.conn.Write(out)
			w.mu.Lock()
			if err != nil && !w.closed {
				w.closed, w.err = true, err
			}
			putBuf(out)
			w.writing = false
			continue // look again: more may be pending, or a close
		}
		if w.closed {
			w.stopped, w.flushing = true, false
			w.mu.Unlock()
			w.shutdown()
			close(w.done)
			// May wait for a handler the read loop is running.
			_ = w.conn.Close()
			return
		}
		break
	}
	w.flushing = false
	w.mu.Unlock()
}
