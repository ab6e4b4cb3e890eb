//go:build linux

package wire

// turnWrites sends the bytes a loop's turn queued: the batches of every
// reader the turn served, each writer once, in one io_uring_enter when
// two or more have bytes (ioRing), else as each Writer's Flush would.
// Only the loop's owner uses it.
type turnWrites struct {
	ring  *ioRing   // the loop's; nil: not asked for, or the kernel gave none
	ws    []*Writer // the turn's writers, each once
	taken []*Writer // those whose write right and bytes were taken
	sends []ringOp
	// The ring's submission in progress (hold): its writers and sends, and
	// the one whose descriptor is being taken.
	chunk      []*Writer
	chunkSends []ringOp
	at         int
	heldFn     func(fd uintptr) bool
}

// ringMin is how many writes go through the ring at least: a lone write is
// cheaper as write(2) (docs/benchmarks.md, "Sending a turn's writes in one
// system call").
const ringMin = 2

// newTurnWrites returns the turnWrites of a loop with ring (nil: none).
func newTurnWrites(ring *ioRing) *turnWrites {
	t := &turnWrites{ring: ring}
	t.heldFn = t.held
	return t
}

// add takes b's writers into the turn, emptying b.
func (t *turnWrites) add(b *Batch) { t.ws = b.moveTo(t.ws) }

// flush sends what the turn's writers hold.
func (t *turnWrites) flush() {
	for i, w := range t.ws {
		t.ws[i] = nil
		if out, ok := w.takeWrite(); ok {
			t.taken = append(t.taken, w)
			t.sends = append(t.sends, ringOp{fd: -1, p: out})
		}
	}
	t.ws = t.ws[:0]
	for i := 0; i < len(t.taken); i += ringEntries {
		j := min(len(t.taken), i+ringEntries)
		t.write(t.taken[i:j], t.sends[i:j])
	}
	t.taken, t.sends = t.taken[:0], t.sends[:0]
}

// write sends sends[i].p to taken[i] for every i, then hands each writer
// its outcome (Writer.wrote), writing on its own what was queued meanwhile.
func (t *turnWrites) write(taken []*Writer, sends []ringOp) {
	if t.ring != nil && !t.ring.broken && len(taken) >= ringMin {
		t.chunk, t.chunkSends = taken, sends
		t.hold(0)
		t.chunk, t.chunkSends = nil, nil
	} else {
		for i, w := range taken {
			sends[i].n, sends[i].err = w.tryWrite(sends[i].p)
		}
	}
	for i, w := range taken {
		more, ok := w.wrote(sends[i].p, sends[i].n, sends[i].err)
		for ok {
			n, err := w.tryWrite(more)
			more, ok = w.wrote(more, n, err)
		}
		taken[i], sends[i] = nil, ringOp{}
	}
}

// hold takes the descriptors of t.held's writers from i on, one by one,
// each inside its socket's RawConn.Write (so none is closed and its number
// reused meanwhile), and, holding all of them, sends through the ring.
func (t *turnWrites) hold(i int) {
	for ; i < len(t.chunk); i++ {
		t.at = i
		err := t.chunk[i].raw.Write(t.heldFn)
		if t.chunkSends[i].fd >= 0 {
			return // heldFn took the descriptor and went on from i+1
		}
		t.chunkSends[i].err = err // closed: as tryWrite would say
	}
	t.ring.submit(t.chunkSends)
}

// held is the RawConn.Write callback of hold: the descriptor of write
// t.at, held until the sends after it are done.
func (t *turnWrites) held(fd uintptr) bool {
	t.chunkSends[t.at].fd = int(fd)
	t.hold(t.at + 1)
	return true
}
