package wire

// Batch collects the writers a read loop queued frames to while it
// handled one read's worth of frames, so each gets one Flush (one
// syscall) for all of them. A Batch belongs to one goroutine.
type Batch struct {
	ws []*Writer
}

// Add remembers w for the next Flush.
func (b *Batch) Add(w *Writer) {
	for _, x := range b.ws {
		if x == w {
			return
		}
	}
	b.ws = append(b.ws, w)
}

// Flush flushes every writer added since the last Flush.
func (b *Batch) Flush() {
	for i, w := range b.ws {
		w.Flush()
		b.ws[i] = nil
	}
	b.ws = b.ws[:0]
}

// moveTo appends b's writers that ws lacks to ws, empties b, and returns
// ws.
func (b *Batch) moveTo(ws []*Writer) []*Writer {
next:
	for i, w := range b.ws {
		b.ws[i] = nil
		for _, x := range ws {
			if x == w {
				continue next
			}
		}
		ws = append(ws, w)
	}
	b.ws = b.ws[:0]
	return ws
}
