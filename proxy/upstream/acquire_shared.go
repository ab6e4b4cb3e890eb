package upstream

import (
	"slices"

	"github.com/metamesh/metamesh/proxy/wire"
)

// shared spreads a multiplexed codec's calls over up to MaxConnections
// connections, by their client's affinity, else round robin: replies pair
// by ID, so any connection takes any call. A call never waits for a dial while the pool has a
// connection: it grows to MaxConnections in the background.
type shared struct {
	p       *Pool
	all     []*conn // guarded by p.mu
	next    int
	growing bool // a background dial is under way
}

func (s *shared) acquire(c *Call) (*conn, error) {
	p := s.p
	if err := p.lockOpen(); err != nil {
		return nil, err
	}
	cn := s.pickLocked(p.loops.Pick(c.Affinity), c.Affinity)
	empty := len(s.all) == 0
	p.mu.Unlock()
	switch {
	case cn != nil:
		return cn, nil
	case empty:
		return p.dialOnce(0, s.first)
	}
	// Every connection is at its server's limit of requests in flight
	// (limits.go): one more, beyond MaxConnections, shared by the calls
	// that find them full meanwhile.
	return p.dialOnce(1, s.first)
}

// pickLocked returns a connection that has room for a call (hasRoom: only
// a server's limit fills one), or nil when none has: on the caller's
// event loop (loop; nil in goroutine mode), the one among that loop's
// connections its client's affinity picks (onLoopLocked); in goroutine
// mode, the one at the client's affinity slot; else the next round
// robin. It starts a background dial while there are fewer than
// MaxConnections (outside dialBackoff).
//
// A client's calls go to a connection on its own loop when there is one
// (the pool's connections take the loops in turn, so MaxConnections
// connections reach every loop when it is at least their number): the
// loop's turn then reads the clients, writes their calls (to each
// connection once, all in one io_uring_enter where the kernel allows),
// and later reads the replies, with no other loop woken for them. A
// loop's clients take its connections in turn, as their own connections
// to the server would: apache/thrift's Go server serves a connection's
// calls one after another, and dubbo-go's spent more per call on one
// connection carrying every client's (docs/benchmarks.md, "Session 19").
// In goroutine mode the affinity slot does the same for one read of a
// client: its calls go out in one write to one connection (round robin
// wrote them to each connection, and wrote the replies of one read of a
// connection to more clients: docs/benchmarks.md, Triple, 2026-12-07).
func (s *shared) pickLocked(loop *wire.Loop, affinity uint64) *conn {
	n := len(s.all)
	if n == 0 {
		return nil
	}
	var cn *conn
	if loop != nil {
		cn = s.onLoopLocked(loop, affinity)
	} else if c := s.all[affinity%uint64(n)]; c.hasRoom() {
		cn = c
	}
	for i := 0; cn == nil && i < n; i++ {
		c := s.all[s.next%n]
		s.next++
		if c.hasRoom() {
			cn = c
			break
		}
	}
	if !s.growing && n < s.p.opts.MaxConnections && s.p.backoffLocked() == nil {
		s.growing = true
		go s.grow()
	}
	return cn
}

// onLoopLocked returns the first connection with room among the pool's on
// loop, counting from the one the client's affinity picks: the clients of
// a loop have the affinities i, i+L, i+2L, ... (L loops, Loops.Pick), so
// consecutive ones pick consecutive connections. Nil when none has room.
func (s *shared) onLoopLocked(loop *wire.Loop, affinity uint64) *conn {
	k := 0
	for _, c := range s.all {
		if c.loop == loop {
			k++
		}
	}
	if k == 0 {
		return nil
	}
	pick := int(affinity / uint64(s.p.loops.Len()) % uint64(k))
	var cn *conn
	best, i := k, 0
	for _, c := range s.all {
		if c.loop != loop {
			continue
		}
		if at := (i - pick + k) % k; at < best && c.hasRoom() {
			cn, best = c, at
		}
		i++
	}
	return cn
}

// first returns a connection with room, dialed for every call waiting for
// it unless one has room since the caller looked.
func (s *shared) first() (*conn, error) {
	s.p.mu.Lock()
	cn := s.pickLocked(nil, 0) // dialed since the caller looked
	s.p.mu.Unlock()
	if cn != nil {
		return cn, nil
	}
	return s.add()
}

// grow dials one more connection in the background (a call that finds
// the pool empty meanwhile shares the dial).
func (s *shared) grow() {
	_, _ = s.p.dialOnce(0, s.add)
	s.p.mu.Lock()
	s.growing = false
	s.p.mu.Unlock()
}

// add dials a connection and adds it to the pool.
func (s *shared) add() (*conn, error) {
	p := s.p
	cn, err := p.connect(s, p.nextHint())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		// Drained while dialing: nothing will use it.
		go cn.close(errDrained)
		return nil, p.errClosed()
	}
	s.all = append(s.all, cn)
	return cn, nil
}

func (s *shared) adopt(cn *conn) bool {
	if len(s.all) >= s.p.opts.MaxConnections {
		return false
	}
	s.all = append(s.all, cn)
	return true
}

func (s *shared) settle(cn *conn) { cn.closeIfDrained() }

func (s *shared) forget(cn *conn) {
	if i := slices.Index(s.all, cn); i >= 0 {
		s.all = slices.Delete(s.all, i, i+1)
	}
}

func (s *shared) private() bool             { return false }
func (s *shared) conns(dst []*conn) []*conn { return append(dst, s.all...) }
func (s *shared) open() int                 { return len(s.all) }

var _ acquirer = (*shared)(nil)
