package proxy

import (
	"sync"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// partBit marks a reply slot that belongs to a part of a split request
// rather than to the client's reply order.
const partBit = 1 << 63

// fanout is one split request: its parts are routed as requests of their
// own, their replies collected; the last one in writes the merged reply
// in the request's own slot.
type fanout struct {
	d       *downstream
	seq     uint64 // the request's reply slot
	req     protocols.Message
	mu      sync.Mutex
	replies [][]byte
	left    int
}

// fanouts maps part slots to their fan-out.
type fanouts struct {
	mu    sync.Mutex
	next  uint64
	parts map[uint64]part
}

type part struct {
	f *fanout
	i int
}

// split routes m's parts when the codec splits it, and reports whether it
// did. seq is m's reply slot; each part is a request with a slot of its
// own, and the merged reply takes seq.
func (d *downstream) split(s protocols.Splitter, m *protocols.Message, seq uint64) bool {
	d.parts = s.Split(d.parts[:0], m)
	if len(d.parts) == 0 {
		return false
	}
	f := &fanout{d: d, seq: seq, replies: make([][]byte, len(d.parts)), left: len(d.parts)}
	f.req.Kind, f.req.ID, f.req.Marks = m.Kind, m.ID, m.Marks
	f.req.Raw = append([]byte(nil), m.Raw...)
	for _, h := range m.Headers.All() {
		f.req.Headers.Add(h.Key, h.Value)
	}
	slots := d.fan.register(f, len(d.parts))
	for i := range d.parts {
		r := request{d: d, m: &d.parts[i], seq: slots + uint64(i), pin: protocols.Forward}
		d.route(&r)
	}
	return true
}

// register reserves n part slots for f and returns the first.
func (fs *fanouts) register(f *fanout, n int) uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.parts == nil {
		fs.parts = map[uint64]part{}
	}
	first := partBit | fs.next
	for i := range n {
		fs.parts[first+uint64(i)] = part{f, i}
	}
	fs.next += uint64(n)
	return first
}

// complete records the reply of one part slot; the last part of a
// fan-out writes the merged reply.
func (fs *fanouts) complete(seq uint64, b *wire.Batch, encode func([]byte) []byte) {
	fs.mu.Lock()
	p, ok := fs.parts[seq]
	delete(fs.parts, seq)
	fs.mu.Unlock()
	if !ok {
		return
	}
	f := p.f
	f.mu.Lock()
	f.replies[p.i] = encode(nil)
	f.left--
	done := f.left == 0
	f.mu.Unlock()
	if !done {
		return
	}
	merged := f.d.codec.(protocols.Splitter).Merge(nil, &f.req, f.replies)
	f.d.reply(f.seq, b, func(dst []byte) []byte { return append(dst, merged...) })
}
