package upstream

// BreakWriters fails the writer of every connection of p, as a write
// error does before the connection's read loop sees the close.
func BreakWriters(p *Pool, err error) {
	p.mu.Lock()
	conns := append([]*conn(nil), p.conns...)
	p.mu.Unlock()
	for _, cn := range conns {
		cn.w.CloseWithError(err)
	}
}
