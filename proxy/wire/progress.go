package wire

import "slices"

// Write progress: a Writer counts the bytes it has queued and the bytes
// it has handed to the socket, and runs callbacks once the bytes up to an
// offset are written. A relay uses it for end-to-end flow control: it
// grants its sender credit for bytes only once they have reached the
// receiving peer's socket, so a slow reader slows the writer at the far
// end (docs/triple-streams.md, piece 1). A writer nobody registers with
// pays one length test per write.

// progress is the Writer's side of it, under the Writer's mu.
type progress struct {
	queued  uint64      // bytes ever queued
	written uint64      // bytes ever handed to the socket
	waiters []afterWait // by offset, lowest first
}

// afterWait is one callback waiting for its offset to be written.
type afterWait struct {
	offset uint64
	fn     func()
}

// Queued is the offset just past the bytes queued so far: a caller that
// queued frames and wants to know when they are written waits for it.
func (w *Writer) Queued() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.prog.queued
}

// Written is how many bytes the writer has handed to the socket.
func (w *Writer) Written() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.prog.written
}

// AfterWritten runs fn once the bytes up to offset have been written,
// from the goroutine that wrote them, without the writer's lock held. When
// they have been already, fn runs at once, in the caller. Once the writer
// stops, fn never runs: the peer will not read those bytes.
func (w *Writer) AfterWritten(offset uint64, fn func()) {
	w.mu.Lock()
	if w.prog.written >= offset {
		w.mu.Unlock()
		fn()
		return
	}
	if w.stopped {
		w.mu.Unlock()
		return
	}
	ws := w.prog.waiters
	i := len(ws)
	for i > 0 && ws[i-1].offset > offset {
		i--
	}
	w.prog.waiters = slices.Insert(ws, i, afterWait{offset, fn})
	w.mu.Unlock()
}

// AfterQueued runs fn once every byte queued so far has been written
// (AfterWritten at Queued, in one step).
func (w *Writer) AfterQueued(fn func()) {
	w.mu.Lock()
	offset := w.prog.queued
	w.mu.Unlock()
	w.AfterWritten(offset, fn)
}

// wroteLocked records n more bytes written and returns the callbacks that
// are now due, for the caller to run once it has let go of the lock. The
// slice it returns is not touched by later registrations (they append
// past it).
func (w *Writer) wroteLocked(n int) []afterWait {
	w.prog.written += uint64(n)
	if len(w.prog.waiters) == 0 {
		return nil
	}
	ws := w.prog.waiters
	i := 0
	for i < len(ws) && ws[i].offset <= w.prog.written {
		i++
	}
	if i == 0 {
		return nil
	}
	w.prog.waiters = ws[i:]
	if len(w.prog.waiters) == 0 {
		w.prog.waiters = nil
	}
	return ws[:i:i]
}

// runDue runs callbacks wroteLocked returned.
func runDue(due []afterWait) {
	for i := range due {
		due[i].fn()
		due[i].fn = nil
	}
}

// dropWaitersLocked forgets the callbacks of a writer that stopped.
func (w *Writer) dropWaitersLocked() { w.prog.waiters = nil }
