package upstream

// Withdraw takes back, from the connections of every pool, the two-way
// calls for which mine reports true (a client that went away), and
// returns them: their receivers will not be called, and the caller ends
// and releases them. Calls whose replies pair by order (pipelined,
// exclusive) are left alone: taking one back would mean closing a
// connection whose replies come in order (and, pipelined, carry other
// clients' calls); the default timeout bounds them. Pools already drained
// by a config change are not searched; the default timeout bounds their
// calls too.
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
		conns := p.acq.conns(nil)
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
	n := len(out)
	cn.mu.Lock()
	out, _ = cn.calls.leave(mine, out, false)
	cn.mu.Unlock()
	if len(out) > n {
		cn.settle()
	}
	return out
}
