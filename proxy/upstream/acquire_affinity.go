package upstream

import "slices"

// affinity keeps each client of a pipelined codec on one connection per
// host, its slot among MaxConnections, chosen by Call.Affinity: the
// server runs a client's commands in the order the client sent them (a
// GET after a SET sees it), and replies pair by order. A slot's connection
// is dialed the first time a call needs it.
type affinity struct {
	p     *Pool
	slots []*conn // guarded by p.mu; nil: not dialed yet
	spare []*conn // connections of slots a smaller MaxConnections dropped
}

func (s *affinity) acquire(c *Call) (*conn, error) {
	p := s.p
	if err := p.lockOpen(); err != nil {
		return nil, err
	}
	if len(s.slots) != p.opts.MaxConnections {
		s.resizeLocked(p.opts.MaxConnections)
	}
	i := int(c.Affinity % uint64(len(s.slots)))
	cn := s.slots[i]
	p.mu.Unlock()
	if cn != nil {
		return cn, nil
	}
	return p.dialOnce(i, func() (*conn, error) { return s.fill(i) })
}

// resizeLocked makes n slots; the connections of dropped ones stay open
// (their clients' calls may be in flight) until the pool is drained.
func (s *affinity) resizeLocked(n int) {
	for _, cn := range s.slots[min(n, len(s.slots)):] {
		if cn != nil {
			s.spare = append(s.spare, cn)
		}
	}
	s.slots = append(make([]*conn, 0, n), s.slots[:min(n, len(s.slots))]...)[:n]
}

// fill returns slot i's connection, dialed for every call waiting for it.
func (s *affinity) fill(i int) (*conn, error) {
	p := s.p
	p.mu.Lock()
	if i < len(s.slots) && s.slots[i] != nil { // dialed since the caller looked
		cn := s.slots[i]
		p.mu.Unlock()
		return cn, nil
	}
	p.mu.Unlock()
	cn, err := p.connect(s, uint64(i))
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed.Load():
		// Drained while dialing: nothing will use it.
		go cn.close(errDrained)
		return nil, p.errClosed()
	case i < len(s.slots) && s.slots[i] == nil:
		s.slots[i] = cn
	default: // the slots changed while dialing
		s.spare = append(s.spare, cn)
	}
	return cn, nil
}

func (s *affinity) adopt(cn *conn) bool {
	i := slices.Index(s.slots, nil)
	if i < 0 {
		return false
	}
	s.slots[i] = cn
	return true
}

func (s *affinity) settle(cn *conn) { cn.closeIfDrained() }

func (s *affinity) forget(cn *conn) {
	if i := slices.Index(s.slots, cn); i >= 0 {
		s.slots[i] = nil
	}
	if i := slices.Index(s.spare, cn); i >= 0 {
		s.spare = slices.Delete(s.spare, i, i+1)
	}
}

func (s *affinity) private() bool { return false }

func (s *affinity) conns(dst []*conn) []*conn {
	for _, cn := range s.slots {
		if cn != nil {
			dst = append(dst, cn)
		}
	}
	return append(dst, s.spare...)
}

func (s *affinity) open() int { return len(s.conns(nil)) }

var _ acquirer = (*affinity)(nil)
