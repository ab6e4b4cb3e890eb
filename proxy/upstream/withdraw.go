package upstream

import "github.com/metamesh/metamesh/protocols"

// Withdraw takes back, from the connections of every pool, the multiplexed
// two-way calls for which mine reports true (a client that went away),
// and returns them: their receivers will not be called, and the caller
// ends and releases them. Pipelined and exclusive calls are left alone:
// taking one back would mean closing a connection whose replies come in
// order (and, pipelined, carry other clients' calls); the default timeout
// bounds them. Pools already drained by a config change are not searched;
// the default timeout bounds their calls too.
func (m *Manager) Withdraw(mine func(*Call) bool) []*Call {
	m.mu.Lock()
	pools := make([]*Pool, 0, len(m.pools))
	for _, p := range m.pools {
		if p.codec.Model() == protocols.Multiplexed {
			pools = append(pools, p)
		}
	}
	m.mu.Unlock()
	var out []*Call
	for _, p := range pools {
		p.mu.Lock()
		conns := append([]*conn(nil), p.conns...)
		p.mu.Unlock()
		for _, cn := range conns {
			out = cn.withdraw(mine, out)
		}
	}
	return out
}

// withdraw removes cn's calls for which mine reports true and appends
// them to out.
func (cn *conn) withdraw(mine func(*Call) bool, out []*Call) []*Call {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for id, c := range cn.byID {
		if mine(c) {
			delete(cn.byID, id)
			out = append(out, c)
		}
	}
	return out
}
