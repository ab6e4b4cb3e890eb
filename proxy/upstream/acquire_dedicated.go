package upstream

import (
	"errors"
	"sync/atomic"

	"github.com/metamesh/metamesh/proxy/wire"
)

// Dedicated is an upstream connection of one client alone, outside the
// pool's shared connections: for a transaction or a blocking command that
// must not share a pipeline with other clients' requests. When the codec
// can reset a connection (protocols.Resetter), a released one is reset
// and kept for the next client (see idle.go) instead of closed, so a
// transaction costs no connect to the server.
type Dedicated struct {
	cn   *conn
	sent bool // a call went out on cn: it can't be swapped for another
}

// lease is the state of a dedicated connection; the pool's shared ones
// leave it zero.
type lease struct {
	owner *Dedicated // the client's handle while in use; guarded by conn.mu
	// released marks a connection its owner is done with: it is
	// recycled once its calls are answered (idle.go).
	released  atomic.Bool
	resetLeft atomic.Int32 // replies to the reset still to come
	resetSeen int          // replies to the reset checked; read loop only
	// push gets the frames of a streaming connection (stream.go) while
	// its owner has it; guarded by conn.mu.
	push Pusher
}

// dedicated is the strategy of the connections clients take for
// themselves: every open one (to withdraw the calls of a client that
// left) and those reset and idle for the next client.
type dedicated struct {
	p    *Pool
	live map[*conn]struct{} // guarded by p.mu
	idle idleSet
}

// Dedicated returns a connection for one client's exclusive use: an idle
// one already reset, or a new one.
func (p *Pool) Dedicated() (*Dedicated, error) {
	d := &Dedicated{}
	if err := p.ded.lend(d); err != nil {
		return nil, err
	}
	return d, nil
}

// lend gives d an idle connection, or a new one.
func (s *dedicated) lend(d *Dedicated) error {
	p := s.p
	if p.closed.Load() {
		return p.errClosed()
	}
	if s.takeIdle(d) {
		return nil
	}
	cn, err := p.connect(s, p.nextHint())
	if err != nil {
		return err
	}
	p.mu.Lock()
	cn.mu.Lock()
	cn.owner = d
	if !cn.closed { // else forget has run: a Send finds it closed
		if s.live == nil {
			s.live = make(map[*conn]struct{})
		}
		s.live[cn] = struct{}{}
	}
	cn.mu.Unlock()
	p.mu.Unlock()
	d.cn = cn
	return nil
}

// Send queues c on the connection, as Pool.Send does. A connection that
// closed before anything was sent on it (it died while idle) is swapped
// for another: the server has seen nothing of this client yet.
func (d *Dedicated) Send(c *Call, b *wire.Batch) error {
	err := d.cn.send(c, b)
	for range maxStaleSends - 1 {
		if d.sent || !errors.Is(err, errStale) {
			break
		}
		if err = d.cn.pool.ded.lend(d); err != nil {
			return err
		}
		err = d.cn.send(c, b)
	}
	d.sent = d.sent || err == nil
	return err
}

// Release lets the connection go once the calls sent on it are answered
// (a client that left mid-call never gets them, but they still come):
// then it is reset for reuse, or closed. Only the first Release of d
// counts; the connection may serve another client afterwards.
func (d *Dedicated) Release() {
	cn := d.cn
	cn.mu.Lock()
	mine := cn.owner == d
	if mine {
		cn.owner, cn.push = nil, nil
		cn.released.Store(true)
	}
	cn.mu.Unlock()
	if mine {
		cn.recycle()
	}
}

// errClientGone closes a dedicated connection whose client left with
// calls still in flight on it.
var errClientGone = errors.New("upstream: the client of this connection left with calls in flight")

// Leave is Release for a client that has gone: with nothing in flight the
// connection is reset for reuse as on Release; with calls in flight it is
// closed at once, since nobody will read their replies and a blocking
// command's reply may never come (it would hold the connection, and the
// server's client, for good). Only the owning handle counts.
func (d *Dedicated) Leave() {
	cn := d.cn
	cn.mu.Lock()
	mine := cn.owner == d
	busy := cn.calls.pending() > 0
	if mine {
		cn.owner, cn.push = nil, nil
		if !busy {
			cn.released.Store(true)
		}
	}
	cn.mu.Unlock()
	switch {
	case !mine:
	case busy:
		cn.close(errClientGone)
	default:
		cn.recycle()
	}
}

// settle recycles a released connection once its last call is answered.
func (s *dedicated) settle(cn *conn) {
	if cn.released.Load() {
		cn.recycle()
	}
}

func (s *dedicated) forget(cn *conn) {
	delete(s.live, cn)
	s.forgetIdle(cn)
}

func (s *dedicated) private() bool { return true }

// conns appends every open dedicated connection to dst. Called with p.mu
// held.
func (s *dedicated) conns(dst []*conn) []*conn {
	for cn := range s.live {
		dst = append(dst, cn)
	}
	return dst
}

var _ holder = (*dedicated)(nil)
