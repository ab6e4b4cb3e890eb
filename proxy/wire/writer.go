// Package wire holds the connection plumbing shared by downstream and
// upstream connections: a read loop that decodes frames in place from a
// reused buffer, and a writer that coalesces frames into few syscalls.
package wire

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrClosed is returned by Append after the writer has stopped.
var ErrClosed = errors.New("wire: connection closed")

// DefaultMaxPending bounds the bytes waiting to be written to one peer. A
// peer that stops reading is disconnected rather than buffered without end.
const DefaultMaxPending = 64 << 20

// Writer owns the write side of one connection. Producers append encoded
// frames under a mutex; one goroutine per connection writes whatever has
// accumulated in a single Write, so a burst of frames costs one syscall
// and a slow peer never blocks a producer.
type Writer struct {
	conn       net.Conn
	maxPending int

	mu      sync.Mutex
	pending []byte
	closed  bool
	err     error
	wake    chan struct{}
	done    chan struct{}
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
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	go w.flushLoop()
	return w
}

// Append lets encode append one or more frames to the pending bytes and
// schedules a flush. encode runs under the writer's lock: it must only
// append to dst and return it.
func (w *Writer) Append(encode func(dst []byte) []byte) error {
	w.mu.Lock()
	if w.closed {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.pending = encode(w.pending)
	if len(w.pending) > w.maxPending {
		err := fmt.Errorf("wire: %d bytes pending for a peer that is not reading (limit %d)", len(w.pending), w.maxPending)
		first := w.stopLocked(err)
		w.mu.Unlock()
		if first {
			w.finish(err)
		}
		return err
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// Close flushes what is pending, then closes the connection.
func (w *Writer) Close() { w.CloseWithError(ErrClosed) }

// CloseWithError stops the writer, closes the connection and makes later
// Appends return err. Unless err is ErrClosed, bytes not yet written are
// dropped.
func (w *Writer) CloseWithError(err error) {
	w.mu.Lock()
	first := w.stopLocked(err)
	w.mu.Unlock()
	if first {
		w.finish(err)
	}
}

// stopLocked marks w closed with err, with w.mu held, and reports whether
// this call did. Unless the close is graceful the pending bytes are
// dropped: nothing more is owed to the peer.
func (w *Writer) stopLocked(err error) bool {
	if w.closed {
		return false
	}
	w.closed, w.err = true, err
	if !errors.Is(err, ErrClosed) {
		w.pending = nil
	}
	return true
}

// finish wakes the flushing goroutine and waits for it to close the
// connection. A non-graceful stop closes the connection first: a Write
// blocked on a peer that stopped reading would otherwise never return.
func (w *Writer) finish(err error) {
	if !errors.Is(err, ErrClosed) {
		_ = w.conn.Close()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

// Done is closed once the writer has stopped and the connection is closed.
func (w *Writer) Done() <-chan struct{} { return w.done }

func (w *Writer) flushLoop() {
	defer close(w.done)
	spare := make([]byte, 0, 16<<10)
	for range w.wake {
		w.mu.Lock()
		out := w.pending
		w.pending = spare[:0]
		closed := w.closed
		w.mu.Unlock()

		if len(out) > 0 {
			if _, err := w.conn.Write(out); err != nil {
				w.mu.Lock()
				if !w.closed {
					w.closed, w.err = true, err
				}
				w.mu.Unlock()
				closed = true
			}
		}
		// Keep the larger buffer for reuse, but let an outsized one go.
		if cap(out) <= 1<<20 {
			spare = out[:0]
		} else {
			spare = make([]byte, 0, 16<<10)
		}
		if closed {
			w.drainAfterClose(spare)
			_ = w.conn.Close()
			return
		}
	}
}

// drainAfterClose writes frames appended between the last flush and Close,
// so a reply queued just before a graceful close still reaches the peer.
func (w *Writer) drainAfterClose(spare []byte) {
	w.mu.Lock()
	out := w.pending
	w.pending = spare[:0]
	graceful := errors.Is(w.err, ErrClosed)
	w.mu.Unlock()
	if graceful && len(out) > 0 {
		_, _ = w.conn.Write(out)
	}
}
