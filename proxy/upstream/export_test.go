package upstream

// IdleDedicated is how many reset dedicated connections p keeps idle.
func (p *Pool) IdleDedicated() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle.conns)
}
