package wire

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestQueueSoonTimerStoppedByTheFlusher: on a connection that is not a
// socket (TLS, the mesh's mTLS), the flushing goroutine writes what is
// pending; what QueueSoon queued goes with it and its timer is stopped,
// not left to fire for nothing.
func TestQueueSoonTimerStoppedByTheFlusher(t *testing.T) {
	local, remote := net.Pipe()
	defer remote.Close()
	go func() { _, _ = io.Copy(io.Discard, remote) }()
	w := NewWriter(local, 0)
	defer w.Close()
	_ = w.QueueSoon(func(d []byte) []byte { return append(d, "ack"...) }, time.Hour)
	_ = w.Append(func(d []byte) []byte { return append(d, "reply"...) })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		w.mu.Lock()
		armed, pending, writing := w.soonArmed, len(w.pending), w.writing
		w.mu.Unlock()
		if pending == 0 && !writing {
			if armed {
				t.Fatal("everything written, the QueueSoon timer still armed")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the flusher did not write within 5 s")
		}
	}
}
