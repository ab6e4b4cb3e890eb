package upstream

// BreakWriters fails the writer of every connection of p, as a write
// error does before the connection's read loop sees the close.
func BreakWriters(p *Pool, err error) {
	p.mu.Lock()
	conns := p.acq.conns(nil)
	p.mu.Unlock()
	for _, cn := range conns {
		cn.w.CloseWithError(err)
	}
}

// IdleDedicated is how many reset dedicated connections p keeps idle.
func (p *Pool) IdleDedicated() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ded.idle.conns)
}
