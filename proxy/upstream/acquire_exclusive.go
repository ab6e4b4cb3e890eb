package upstream

import "slices"

// exclusive lends each call of an exclusive codec a connection of its own
// until its reply (its replies carry neither an ID nor an order, so one
// call at a time is what lets them pair): an idle one, newest first, or a
// new one while fewer than MaxConnections are open; past that the call is
// refused with ErrOverloaded.
type exclusive struct {
	p       *Pool
	idle    []*conn // guarded by p.mu
	all     map[*conn]struct{}
	dialing int // dials under way, counted against MaxConnections
}

func (s *exclusive) acquire(*Call) (*conn, error) {
	p := s.p
	if err := p.lockOpen(); err != nil {
		return nil, err
	}
	if n := len(s.idle); n > 0 {
		cn := s.idle[n-1]
		s.idle = s.idle[:n-1]
		p.mu.Unlock()
		return cn, nil
	}
	if s.open() >= p.opts.MaxConnections {
		p.mu.Unlock()
		return nil, ErrOverloaded
	}
	s.dialing++
	p.mu.Unlock()
	cn, err := p.connect(s, p.nextHint())
	p.mu.Lock()
	defer p.mu.Unlock()
	s.dialing--
	if err != nil {
		return nil, err
	}
	s.addLocked(cn)
	return cn, nil
}

// addLocked counts cn among the pool's connections unless it closed
// already (its forget has run).
func (s *exclusive) addLocked(cn *conn) {
	if cn.isClosed() {
		return
	}
	if s.all == nil {
		s.all = make(map[*conn]struct{})
	}
	s.all[cn] = struct{}{}
}

// settle puts cn back among the idle connections once its call is done,
// or closes it if the pool was drained meanwhile.
func (s *exclusive) settle(cn *conn) {
	p := s.p
	p.mu.Lock()
	dead := cn.isClosed() // close took it out of the pool already
	if !dead && !p.closed.Load() {
		s.idle = append(s.idle, cn)
	}
	p.mu.Unlock()
	if !dead {
		cn.closeIfDrained()
	}
}

func (s *exclusive) adopt(cn *conn) bool {
	if s.open() >= s.p.opts.MaxConnections {
		return false
	}
	s.addLocked(cn)
	s.idle = append(s.idle, cn)
	return true
}

func (s *exclusive) forget(cn *conn) {
	delete(s.all, cn)
	if i := slices.Index(s.idle, cn); i >= 0 {
		s.idle = slices.Delete(s.idle, i, i+1)
	}
}

func (s *exclusive) private() bool { return false }

func (s *exclusive) conns(dst []*conn) []*conn {
	for cn := range s.all {
		dst = append(dst, cn)
	}
	return dst
}

func (s *exclusive) open() int { return len(s.all) + s.dialing }

var _ acquirer = (*exclusive)(nil)
