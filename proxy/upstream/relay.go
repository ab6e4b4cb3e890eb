package upstream

import (
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// Streaming reports whether part of c's answer came (a response with
// More): its answer is being relayed. Read it from the Receiver's methods.
func (c *Call) Streaming() bool { return c.streaming }

// Credit gives the upstream of c, a streaming call, n more bytes of flow
// control credit on its stream, when its codec relays with credit
// (protocols.Relayer), adding the writer to b. The caller must hold c: it
// must not be released meanwhile.
func Credit(c *Call, n uint32, b *wire.Batch) {
	cn := c.cn
	if cn == nil {
		return
	}
	r := cn.relayer
	if r == nil {
		return
	}
	id := c.id
	if cn.w.Queue(func(dst []byte) []byte { return r.Credit(dst, id, n) }) == nil {
		b.Add(cn.w)
	}
}

// CancelStream withdraws c as Cancel does and, when it was taken back,
// tells its upstream to stop the stream (protocols.Relayer), adding the
// writer to b: a relayed stream whose client reset it, or whose time ran
// out. The caller must hold c as for Cancel.
func CancelStream(c *Call, b *wire.Batch) (took bool, after func()) {
	cn := c.cn
	if cn == nil {
		return false, nil
	}
	took, left, after := cn.cancel(c)
	if left {
		cn.cancelStreams([]*Call{c}, b)
	}
	return took, after
}

// DepartStream is CancelStream for a receiver that does not look whether
// a call is still current (the client's own, without an exchange): when a
// part of c's answer is being delivered, c stays until that delivery is
// done, which then fails it with ErrStreamCancelled (its upstream stream
// is stopped at once).
func DepartStream(c *Call, b *wire.Batch) (took bool, after func()) {
	cn := c.cn
	if cn == nil {
		return false, nil
	}
	cn.mu.Lock()
	if cn.delivering == c {
		cn.departed, cn.departErr = c, ErrStreamCancelled
		cn.mu.Unlock()
		cn.cancelStreams([]*Call{c}, b)
		return false, nil
	}
	cn.mu.Unlock()
	return CancelStream(c, b)
}

// cancelStreams tells the upstream to stop the streams of calls that
// left cn while their answer streamed, adding the writer to b.
func (cn *conn) cancelStreams(calls []*Call, b *wire.Batch) {
	r := cn.relayer
	if r == nil {
		return
	}
	for _, c := range calls {
		if !c.streaming {
			continue
		}
		id := c.id
		if cn.w.Queue(func(dst []byte) []byte { return r.Cancel(dst, id) }) == nil {
			b.Add(cn.w)
		}
	}
}

// Crediter is implemented by the Receivers of calls whose request is
// streamed (Call.RequestStream): Credited gives the client n more bytes
// of flow-control credit for c's request, which the upstream gave for
// its stream (protocols.Relayer), adding the writer it queues to to b.
// It runs on the upstream connection's read loop with the connection's
// lock held (c can't be released meanwhile): it must only queue.
type Crediter interface {
	Credited(c *Call, n uint32, b *wire.Batch)
}

// passCredits passes the credit the upstream gave the streams of calls
// whose request is streamed on to their clients. Read loop only.
func (cn *conn) passCredits(b *wire.Batch) {
	cn.creds = cn.relayer.Credits(cn.creds[:0])
	if len(cn.creds) == 0 {
		return
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for _, cr := range cn.creds {
		c := cn.calls.find(cr.ID)
		if c == nil || !c.RequestStream || cr.Reset {
			continue
		}
		if r, ok := c.Receiver.(Crediter); ok {
			r.Credited(c, cr.N, b)
		}
	}
}

// SendPart writes part, a later part of c's streamed request
// (protocols.KindPart), on the connection and stream c went out on,
// adding the writer to b. The caller must hold c as for Credit, and call
// it in the parts' order, after c was sent.
func SendPart(c *Call, part *protocols.Message, b *wire.Batch) error {
	cn := c.cn
	if cn == nil {
		return errStale
	}
	id := c.id
	var encErr error
	err := cn.w.Queue(func(dst []byte) []byte {
		out, e := cn.encode(dst, part, id, nil)
		if e != nil {
			encErr = e
			return dst
		}
		return out
	})
	if err != nil {
		return err
	}
	b.Add(cn.w)
	return encErr
}
