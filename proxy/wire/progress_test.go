package wire_test

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/metamesh/metamesh/proxy/wire"
)

// TestWriterProgressSlowPeer: callbacks registered at an offset the peer
// has not read yet do not run while it reads nothing, run in offset order
// once it reads, each after its bytes were written, and an offset already
// written runs its callback at once.
func TestWriterProgressSlowPeer(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			local, remote := tr.pair(t)
			w := wire.NewWriter(local, 0)
			defer w.Close()

			chunk := bytes.Repeat([]byte{'x'}, 64<<10)
			var queued []byte
			// Fill the socket: the peer does not read, so at some point
			// bytes stay queued and unwritten.
			for w.Written() == w.Queued() {
				if len(queued) > 32<<20 {
					t.Fatalf("the writer wrote %d bytes to a peer that reads nothing", len(queued))
				}
				queued = append(queued, chunk...)
				if err := w.Append(func(dst []byte) []byte { return append(dst, chunk...) }); err != nil {
					t.Fatal(err)
				}
			}
			if got := w.Queued(); got != uint64(len(queued)) {
				t.Fatalf("Queued() = %d, want %d", got, len(queued))
			}

			now := make(chan struct{})
			w.AfterWritten(w.Written(), func() { close(now) })
			select {
			case <-now:
			default:
				t.Fatal("a callback at an offset already written did not run at once")
			}

			var mu sync.Mutex
			var ran []uint64
			var late []uint64 // offsets whose callback ran before they were written
			done := make(chan struct{})
			add := func(offset uint64, last bool) {
				w.AfterWritten(offset, func() {
					mu.Lock()
					ran = append(ran, offset)
					if w.Written() < offset {
						late = append(late, offset)
					}
					mu.Unlock()
					if last {
						close(done)
					}
				})
			}
			end := w.Queued()
			add(end, true) // registered first, runs last
			add(end-1, false)
			add(w.Written()+1, false)

			// Another round of appends while nothing is read: still
			// nothing runs.
			if err := w.Append(func(dst []byte) []byte { return append(dst, chunk...) }); err != nil {
				t.Fatal(err)
			}
			queued = append(queued, chunk...)
			mu.Lock()
			if len(ran) != 0 {
				t.Fatalf("callbacks ran for offsets %v that a peer reading nothing had not taken", ran)
			}
			mu.Unlock()

			got := make([]byte, len(queued))
			if _, err := io.ReadFull(remote, got); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the callback at the end of the queued bytes never ran after the peer read them")
			}
			mu.Lock()
			defer mu.Unlock()
			want := []uint64{ran[0], end - 1, end}
			if len(ran) != 3 || ran[1] != want[1] || ran[2] != want[2] || ran[0] > ran[1] {
				t.Fatalf("callbacks ran for offsets %v, want three in offset order ending %d, %d", ran, end-1, end)
			}
			if len(late) > 0 {
				t.Fatalf("callbacks for offsets %v ran before their bytes were written", late)
			}
			if !bytes.Equal(got, queued) {
				t.Fatal("the peer read other bytes than were queued")
			}
		})
	}
}

// TestWriterProgressDroppedOnClose: a callback whose bytes a failed
// writer will never write does not run.
func TestWriterProgressDroppedOnClose(t *testing.T) {
	local, remote := tcpPair(t)
	w := wire.NewWriter(local, 0)
	chunk := bytes.Repeat([]byte{'x'}, 64<<10)
	for w.Written() == w.Queued() {
		if err := w.Append(func(dst []byte) []byte { return append(dst, chunk...) }); err != nil {
			t.Fatal(err)
		}
	}
	ran := make(chan struct{}, 1)
	w.AfterQueued(func() { ran <- struct{}{} })
	_ = remote.Close()
	w.CloseWithError(io.ErrUnexpectedEOF)
	<-w.Done()
	w.AfterQueued(func() { ran <- struct{}{} }) // on a stopped writer
	select {
	case <-ran:
		t.Fatal("a callback ran for bytes a closed writer never wrote")
	default:
	}
}
