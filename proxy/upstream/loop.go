package upstream

import (
	"net"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// SetLoops gives the pools made from now on the proxy's event loops: the
// read loops of their plaintext connections of codecs that read on a loop
// (OnLoop) run there (docs/proxy-config.md, "I/O mode"). nil: goroutine
// mode. Call it before the first Pool.
func (m *Manager) SetLoops(ls *wire.Loops) {
	m.mu.Lock()
	m.loops = ls
	m.mu.Unlock()
}

// OnLoop reports whether connections of codec read on an event loop when
// the proxy runs them: every codec whose frames decode on their own, of
// any model (Redis, Dubbo, Thrift, plugin codecs). A codec whose frames
// need the connection's state (protocols.ConnCodec: Triple's HTTP/2, with
// its flow control and streamed relays) stays on goroutines.
func OnLoop(codec protocols.Codec) bool {
	_, conn := codec.(protocols.ConnCodec)
	return !conn
}

// loopFor returns the event loop of a new connection nc, or nil for a
// goroutine of its own (goroutine mode, TLS, a codec not on loops). An
// affinity slot's connection gets the slot as hint, and a client the
// same loop as its affinity (proxy/downstream.go), so a client's requests
// and the connection they go to share a loop when MaxConnections is a
// multiple of the loops: one loop's turn then batches them into one write.
func (p *Pool) loopFor(nc net.Conn, hint uint64) *wire.Loop {
	if _, plain := nc.(*net.TCPConn); !plain || p.loops == nil || !OnLoop(p.codec) {
		return nil
	}
	return p.loops.Pick(hint)
}

// nextHint returns the loop hint of a connection outside affinity slots:
// such connections take the loops in turn.
func (p *Pool) nextHint() uint64 { return p.hints.Add(1) }
