package upstream

import (
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// Pusher gets what a streaming dedicated connection (Dedicated.Stream)
// receives while no call waits on it: frames the server sends unprompted
// (Redis pub/sub messages, subscription confirmations), and its close.
// Both run on the connection's read loop.
type Pusher interface {
	// Push gets one frame; resp and its bytes are valid during the call
	// only. The pusher adds the writers it queues to to b.
	Push(resp *protocols.Message, b *wire.Batch)
	// Closed says the connection closed while streaming, with cause.
	Closed(cause error)
}

// Stream makes the connection a stream: from now on every frame it
// receives while no call waits on it goes to p, not paired with a call.
// Requests sent on it then are oneway (protocols.KindOneway), so their
// replies come as such frames, in order; two-way calls sent before them
// (a preamble) are answered first. Release and Leave end the stream.
func (d *Dedicated) Stream(p Pusher) {
	cn := d.cn
	cn.mu.Lock()
	if cn.owner == d {
		cn.push = p
	}
	cn.mu.Unlock()
}

// pusherLocked returns the connection's Pusher when a frame with no call waiting
// goes to it. Read loop only, with cn.mu held.
func (cn *conn) pusherLocked() Pusher {
	if cn.push == nil || cn.calls.pending() > 0 {
		return nil
	}
	return cn.push
}
