package upstream

import "github.com/metamesh/metamesh/proxy/wire"

// Withdraw takes back, from the connections of every pool, the two-way
// calls for which mine reports true (a client that went away), and
// returns them: their receivers will not be called, and the caller ends
// and releases them. A call on a shared connection whose replies pair by
// order (pipelined, exclusive) is left alone: taking it back would mean
// closing a connection whose replies come in order (and, pipelined, carry
// other clients' calls); the default timeout bounds it. A client's own
// connection (Pool.Dedicated, pinned or released) carries no other
// client's calls and is never swept, so it is closed instead: a blocking
// command's reply may never come. Pools already drained by a config
// change are not searched; the default timeout bounds their calls too.
func (m *Manager) Withdraw(mine func(*Call) bool) []*Call {
	m.mu.Lock()
	pools := make([]*Pool, 0, len(m.pools))
	for _, p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	var out []*Call
	for _, p := range pools {
		p.mu.Lock()
		conns := p.ded.conns(p.acq.conns(nil))
		p.mu.Unlock()
		for _, cn := range conns {
			out = cn.withdraw(mine, out)
		}
	}
	return out
}

// withdraw removes cn's calls for which mine reports true, where they can
// leave, and appends them to out.
func (cn *conn) withdraw(mine func(*Call) bool, out []*Call) []*Call {
	own := cn.home.private()
	n := len(out)
	cn.mu.Lock()
	// A call the read loop is handing a part of its answer stays: that
	// delivery may release it. It ends it once done, unless a cancel took
	// it out meanwhile (deliver: its receiver's Fail gets ErrClientGone).
	delivering := cn.delivering
	out, broken := cn.calls.leave(func(c *Call) bool { return c != delivering && mine(c) }, out, own)
	var departed *Call
	if delivering != nil && mine(delivering) {
		departed = delivering
		cn.departed, cn.departErr = delivering, ErrClientGone
	}
	cn.mu.Unlock()
	switch {
	case broken && own:
		// The calls left out of turn: the connection is done. Others on
		// it (a session's preamble) fail with its close.
		cn.close(errClientGone)
	case len(out) > n || departed != nil:
		// Streams whose client went away stop at the upstream too.
		var b wire.Batch
		cn.cancelStreams(out[n:], &b)
		if departed != nil {
			cn.cancelStreams([]*Call{departed}, &b)
		}
		b.Flush()
		cn.settle()
	}
	return out
}
