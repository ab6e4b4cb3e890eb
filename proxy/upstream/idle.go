package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
)

// The idle set of a pool's dedicated connections. A released dedicated
// connection (Dedicated.Release) goes through three steps:
//
//  1. released: it waits until every call sent on it is answered, so a
//     reply still on its way (a blocking command whose client left) can
//     never reach the next client;
//  2. resetting: recycle sends the codec's reset (protocols.Resetter),
//     and the read loop checks each reply; a reply other than the one
//     expected closes the connection;
//  3. idle: the pool keeps it, newest last, until Pool.Dedicated takes it
//     (newest first, so the oldest expire), it has been idle for
//     Options.DedicatedIdleTimeout, or the pool is drained.
//
// It is closed instead when the codec has no reset or the idle set holds
// Options.MaxIdleDedicated already. Lock order: Pool.mu before conn.mu.

// idleSet is a pool's idle dedicated connections; guarded by Pool.mu.
type idleSet struct {
	conns  []idleConn // oldest first
	timer  *time.Timer
	warned bool // a refused reset was logged at warn level
}

type idleConn struct {
	cn    *conn
	since time.Time
}

// Defaults of the idle dedicated connections of a pool.
const (
	// DefaultMaxIdleDedicated is how many reset dedicated connections a
	// pool keeps per host: enough for that many transactions or blocking
	// commands at once without a connect.
	DefaultMaxIdleDedicated = 32
	// DefaultDedicatedIdleTimeout closes an idle dedicated connection
	// nobody took for that long.
	DefaultDedicatedIdleTimeout = time.Minute
)

var (
	errNotKept      = errors.New("upstream: dedicated connection not kept for reuse")
	errIdleTimeout  = errors.New("upstream: dedicated connection idle too long")
	errResetRefused = errors.New("upstream: the server refused the reset of a dedicated connection")
)

// recycle starts the reset of a released connection whose calls are all
// answered; it does nothing before, and closes the connection when it
// won't be kept. Called on Release and by the read loop after each
// response on a released connection; the first call that finds it ready
// wins.
func (cn *conn) recycle() {
	cn.mu.Lock()
	ready := !cn.closed && cn.calls.pending() == 0 && cn.released.Load()
	if ready {
		cn.released.Store(false)
	}
	cn.mu.Unlock()
	if !ready {
		return
	}
	p := cn.pool
	rs := p.resetter
	if rs == nil || !p.ded.roomForIdle() {
		cn.close(errNotKept)
		return
	}
	var n int
	err := cn.w.Queue(func(dst []byte) []byte {
		out, k := rs.Reset(dst)
		// Counted before the reset can be written (it is appended under
		// the writer's lock), or its first reply could come while the
		// read loop still takes it for a call's.
		n = k
		cn.resetLeft.Store(int32(k))
		return out
	})
	switch {
	case err != nil:
		cn.close(err)
	case n == 0:
		p.ded.putIdle(cn)
	default:
		cn.w.Flush()
	}
}

// resetReplied checks one reply to the reset; the last one makes the
// connection idle. Read loop only.
func (cn *conn) resetReplied(m *protocols.Message) error {
	i := cn.resetSeen
	if !cn.pool.resetter.ResetReplyOK(i, m) {
		raw := bytes.TrimSpace(m.Raw)
		return fmt.Errorf("%w: reply %d: %q", errResetRefused, i, raw[:min(len(raw), 128)])
	}
	cn.resetSeen++
	if cn.resetLeft.Add(-1) == 0 {
		cn.resetSeen = 0
		cn.pool.ded.putIdle(cn)
	}
	return nil
}

// roomForIdle reports whether the pool would keep one more idle
// dedicated connection.
func (s *dedicated) roomForIdle() bool {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.closed.Load() && len(s.idle.conns) < p.opts.MaxIdleDedicated
}

// putIdle keeps a reset connection for the next Dedicated, or closes it
// when the pool is drained or full.
func (s *dedicated) putIdle(cn *conn) {
	p := s.p
	p.mu.Lock()
	if cn.isClosed() { // close took it out already
		p.mu.Unlock()
		return
	}
	if !p.closed.Load() && len(s.idle.conns) < p.opts.MaxIdleDedicated {
		s.idle.conns = append(s.idle.conns, idleConn{cn, time.Now()})
		if s.idle.timer == nil {
			s.idle.timer = time.AfterFunc(p.opts.DedicatedIdleTimeout, s.pruneIdle)
		}
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	cn.close(errNotKept)
}

// takeIdle gives d the newest live idle connection, if any.
func (s *dedicated) takeIdle(d *Dedicated) bool {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(s.idle.conns); n > 0; n = len(s.idle.conns) {
		cn := s.idle.conns[n-1].cn
		s.idle.conns[n-1] = idleConn{}
		s.idle.conns = s.idle.conns[:n-1]
		cn.mu.Lock()
		live := !cn.closed // closing: forget will find it gone
		if live {
			cn.owner = d
		}
		cn.mu.Unlock()
		if live {
			d.cn = cn
			return true
		}
	}
	return false
}

// pruneIdle closes the connections idle for DedicatedIdleTimeout and
// sets the timer for the next one to expire.
func (s *dedicated) pruneIdle() {
	p := s.p
	p.mu.Lock()
	now, ttl := time.Now(), p.opts.DedicatedIdleTimeout
	i := 0
	for i < len(s.idle.conns) && now.Sub(s.idle.conns[i].since) >= ttl {
		i++
	}
	old := make([]*conn, i)
	for j := range old {
		old[j] = s.idle.conns[j].cn
	}
	s.idle.conns = slices.Delete(s.idle.conns, 0, i)
	if len(s.idle.conns) > 0 {
		s.idle.timer.Reset(s.idle.conns[0].since.Add(ttl).Sub(now))
	} else {
		s.idle.timer = nil
	}
	p.mu.Unlock()
	for _, cn := range old {
		cn.close(errIdleTimeout)
	}
}

// closeIdle closes every idle dedicated connection (the pool is drained).
func (s *dedicated) closeIdle() {
	p := s.p
	p.mu.Lock()
	idle := s.idle.conns
	s.idle.conns = nil
	if s.idle.timer != nil {
		s.idle.timer.Stop()
		s.idle.timer = nil
	}
	p.mu.Unlock()
	for _, ic := range idle {
		ic.cn.close(errDrained)
	}
}

// forgetIdle drops a closed connection from the idle set. Called with
// p.mu held.
func (s *dedicated) forgetIdle(cn *conn) {
	if i := slices.IndexFunc(s.idle.conns, func(ic idleConn) bool { return ic.cn == cn }); i >= 0 {
		s.idle.conns = slices.Delete(s.idle.conns, i, i+1)
	}
}

// logResetRefused logs a refused reset: at warn level the first time in
// the pool (a server that lacks the reset command refuses every one), then
// at debug level.
func (p *Pool) logResetRefused(err error) {
	p.mu.Lock()
	first := !p.ded.idle.warned
	p.ded.idle.warned = true
	p.mu.Unlock()
	log := p.log.Debug
	if first {
		log = p.log.Warn
	}
	log("closing a dedicated upstream connection instead of reusing it", zap.String("upstream", p.addr), zap.Error(err))
}
