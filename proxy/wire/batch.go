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
