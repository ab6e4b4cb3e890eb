// Package wire holds the connection plumbing shared by downstream and
// upstream connections: a read loop that decodes frames in place from a
// reused buffer, and a writer that coalesces frames into few syscalls.
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
	pending  []byte
	spare    []byte
	writing  bool // someone holds the right to write to conn
	try      nonBlockingWrite
	closed   bool
	err      error
	wake     chan struct{}
	done     chan struct{}
	shutdown chan struct{}
}

// NewWriter starts the flushing goroutine for conn.
func NewWriter(conn net.Conn, maxPending int) *Writer {
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	w := &Writer{
		conn:       conn,
		maxPending: maxPending,
		pending:    make([]byte, 0, 16<<10),
		spare:      make([]byte, 0, 16<<10),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		shutdown:   make(chan struct{}),
	}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
			w.try.fn = w.try.write
		}
	}
	go w.flushLoop()
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

// Flush sends what is pending. Unless a write is already in progress, the
// caller writes it itself without blocking; what the socket won't take at
// once goes to the flushing goroutine.
func (w *Writer) Flush() {
	w.mu.Lock()
	if len(w.pending) == 0 || w.closed {
		closed := w.closed
		w.mu.Unlock()
		if closed {
			w.signal()
		}
		return
	}
	if w.writing || w.raw == nil {
		w.mu.Unlock()
		w.signal()
		return
	}
	w.writing = true
	out := w.pending
	w.pending = w.spare[:0]
	w.mu.Unlock()

	n, err := w.tryWrite(out)

	w.mu.Lock()
	if err != nil && !w.closed {
		w.closed, w.err = true, err
	}
	if n < len(out) && err == nil {
		// The socket is full: put the rest back in front of what others
		// appended meanwhile, and let the flusher wait for the peer.
		rest := append(out[:0], out[n:]...)
		w.pending, w.spare = append(rest, w.pending...), w.pending[:0]
		w.writing = false
		w.mu.Unlock()
		w.signal()
		return
	}
	w.spare = reuse(out)
	w.writing = false
	more := len(w.pending) > 0 || w.closed
	w.mu.Unlock()
	if more {
		w.signal()
	}
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
		n, err := syscall.Write(int(fd), t.p[t.n:])
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

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
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
	w.mu.Unlock()
	if errors.Is(err, ErrClosed) {
		// Graceful: pending bytes get a bounded time to reach the peer.
		_ = w.conn.SetWriteDeadline(time.Now().Add(closeTimeout))
	} else {
		// Unblock a flush stuck on a peer that does not read.
		_ = w.conn.Close()
	}
	w.signal()
	<-w.done
}

// closeTimeout bounds how long a graceful close waits for a slow peer.
const closeTimeout = 5 * time.Second

// Done is closed once the writer has stopped and the connection is closed.
func (w *Writer) Done() <-chan struct{} { return w.done }

func (w *Writer) flushLoop() {
	defer close(w.done)
	for range w.wake {
		w.mu.Lock()
		if w.writing {
			// A producer holds the write right; it signals when done.
			w.mu.Unlock()
			continue
		}
		if len(w.pending) > 0 && (!w.closed || errors.Is(w.err, ErrClosed)) {
			out := w.pending
			w.pending, w.writing = w.spare[:0], true
			w.mu.Unlock()
			_, err := w.conn.Write(out)
			w.mu.Lock()
			if err != nil && !w.closed {
				w.closed, w.err = true, err
			}
			w.spare, w.writing = reuse(out), false
			w.mu.Unlock()
			w.signal() // look again: more may be pending, or a close
			continue
		}
		closed := w.closed
		w.mu.Unlock()
		if closed {
			_ = w.conn.Close()
			return
		}
	}
}

// reuse keeps a buffer for the next batch unless it grew outsized.
func reuse(b []byte) []byte {
	if cap(b) > 1<<20 {
		return make([]byte, 0, 16<<10)
	}
	return b[:0]
}
