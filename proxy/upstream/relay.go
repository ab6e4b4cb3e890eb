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
	r, ok := cn.dec.(protocols.Relayer)
	if !ok {
		return
	}
	id := c.id
	if cn.w.Queue(func(dst []byte) []byte { return r.Credit(dst, id, n) }) == nil {
		b.Add(cn.w)
	}
}

// CancelStream withdraws c as Cancel does and, when it was taken back,
// tells its upstream to stop the stream (protocols.Relayer), adding the
// writer to b: a relayed stream whose client reset it. The caller must
// hold c as for Cancel.
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

// cancelStreams tells the upstream to stop the streams of calls that
// left cn while their answer streamed, adding the writer to b.
func (cn *conn) cancelStreams(calls []*Call, b *wire.Batch) {
	r, ok := cn.dec.(protocols.Relayer)
	if !ok {
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
