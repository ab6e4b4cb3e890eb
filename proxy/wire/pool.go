package wire

import (
	"sync"
	"sync/atomic"
)

// bufSize is the size of pooled read and write buffers: most frames fit
// one, and a connection holds one only while it has bytes to decode or
// send.
const bufSize = 16 << 10

var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

// getBuf returns a pooled buffer of bufSize bytes.
func getBuf() []byte { return bufPool.Get().(*[bufSize]byte)[:] }

// putBuf gives b back to the pool if it is a whole pooled-size buffer
// (anything else, grown or a tail, is left to the collector).
func putBuf(b []byte) {
	if cap(b) == bufSize {
		bufPool.Put((*[bufSize]byte)(b[:bufSize]))
	}
}

// Budget caps the bytes held, across every read loop sharing it, in
// buffers grown past the pooled size for frames being assembled: a few
// peers announcing large frames and never finishing them cannot hold the
// process's memory. A nil *Budget caps nothing.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes (nil when limit ≤ 0: no cap).
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		return nil
	}
	return &Budget{limit: limit}
}

// Used returns the bytes held now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

func (b *Budget) reserve(n int64) bool {
	if b == nil {
		return true
	}
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *Budget) release(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}
