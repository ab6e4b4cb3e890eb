package proxy

import (
	"sync"

	"github.com/metamesh/metamesh/proxy/wire"
)

// replyOrder keeps a client's replies in the order of its requests, for
// pipelined protocols (Redis) whose clients pair replies by order: a
// request routed to a fast upstream must not overtake an earlier one sent
// to a slow upstream. Each request reserves a slot; a reply that completes
// the head slot is written with every completed slot behind it, the others
// wait in their slot.
type replyOrder struct {
	mu    sync.Mutex
	head  uint64 // sequence number of slots[0]
	slots []replySlot
}

type replySlot struct {
	done bool
	buf  []byte
}

// reserve returns the sequence number of the next request's reply.
func (o *replyOrder) reserve() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.slots = append(o.slots, replySlot{})
	return o.head + uint64(len(o.slots)) - 1
}

// complete records the reply of seq, writing what is now in order to w.
func (o *replyOrder) complete(seq uint64, w *wire.Writer, b *wire.Batch, encode func([]byte) []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := int(seq - o.head)
	if i < 0 || i >= len(o.slots) {
		return // the connection was reset under it
	}
	if i > 0 {
		s := &o.slots[i]
		s.buf, s.done = encode(s.buf[:0]), true
		return
	}
	b.Add(w)
	_ = w.Queue(encode)
	o.pop()
	for len(o.slots) > 0 && o.slots[0].done {
		buf := o.slots[0].buf
		_ = w.Queue(func(dst []byte) []byte { return append(dst, buf...) })
		o.pop()
	}
}

func (o *replyOrder) pop() {
	o.slots[0] = replySlot{}
	o.slots = o.slots[1:]
	o.head++
	if len(o.slots) == 0 && cap(o.slots) > 1024 {
		o.slots = nil // let a burst's backing array go
	}
}
