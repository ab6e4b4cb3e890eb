package upstream

import (
	"errors"
	"fmt"
	"time"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// DefaultTimeout is how long a call may wait for its reply when nothing
// else times it (its route sets no timeout): Envoy's default route
// timeout. Manager.SetDefaultTimeout changes it; 0 turns it off.
const DefaultTimeout = 15 * time.Second

// ErrTimeout is the cause of a Fail (with protocols.ReasonTimeout) when no
// reply came within the default timeout.
var ErrTimeout = errors.New("upstream: no reply within the default timeout")

// SelfTimed is implemented by a Receiver that times its calls itself (a
// route with its own timeout): the default timeout leaves alone the calls
// for which it returns true.
type SelfTimed interface{ SelfTimed() bool }

// SetDefaultTimeout sets how long calls on the manager's connections may
// wait for a reply (0: forever). It applies to calls sent from then on and
// to those in flight at their connection's next sweep.
func (m *Manager) SetDefaultTimeout(d time.Duration) { m.timeout.Store(int64(max(d, 0))) }

// The default timeout costs a request nothing beyond a flag test: instead
// of a timer per call, each connection with calls in flight has one timer
// that fires every sweepTick and fails the calls older than the timeout.
// A call is therefore failed between timeout and timeout+sweepTick after
// it started.

// sweepTick is how often a busy connection looks for expired calls: an
// eighth of the timeout, at most a second.
func sweepTick(timeout time.Duration) time.Duration {
	return max(min(timeout/8, time.Second), time.Millisecond)
}

// timeout is the default timeout of the pool's connections (0: none).
func (p *Pool) timeout() time.Duration {
	if p.defaultTimeout == nil {
		return 0
	}
	return time.Duration(p.defaultTimeout.Load())
}

// armSweepLocked starts cn's sweep timer unless it runs already. Called
// with cn.mu held after a two-way call was registered. A client's own
// connection is never swept: its session (a transaction, a blocking
// command) may legitimately wait longer.
func (cn *conn) armSweepLocked() {
	if cn.sweeping || cn.home.private() {
		return
	}
	t := cn.pool.timeout()
	if t <= 0 {
		return
	}
	cn.sweeping = true
	if cn.sweep == nil {
		cn.sweep = time.AfterFunc(sweepTick(t), cn.expire)
		return
	}
	cn.sweep.Reset(sweepTick(t))
}

// expire fails cn's calls that have waited longer than the default
// timeout, and re-arms the sweep while calls remain. A call whose reply
// pairs by ID is simply taken back; a connection whose replies pair by
// order can't skip one, so it is closed: the late calls get a timeout,
// the others on the connection a reset.
func (cn *conn) expire() {
	t := cn.pool.timeout()
	cutoff := time.Now().Add(-t)
	late := func(c *Call) bool { return expired(c, cutoff) }
	cn.mu.Lock()
	cn.sweeping = false
	if cn.closed || t <= 0 {
		cn.mu.Unlock()
		return
	}
	gone, broken := cn.calls.leave(late, nil, false)
	if cn.calls.pending() > 0 {
		cn.armSweepLocked()
	}
	cn.mu.Unlock()

	cause := fmt.Errorf("%w (%v) from %s", ErrTimeout, t, cn.pool.addr)
	if broken {
		cn.shut(cause, errConnClosed, late)
		return
	}
	var b wire.Batch
	for _, c := range gone {
		c.Receiver.Fail(c, protocols.ReasonTimeout, cause, &b)
	}
	b.Flush()
	if len(gone) > 0 {
		cn.settle()
	}
}

// expired reports whether c started before cutoff and nothing else times
// it. A streaming call is answering: its length is the stream's, which the
// default timeout does not bound (docs/triple-streams.md, piece 6).
func expired(c *Call, cutoff time.Time) bool {
	if c.streaming || !c.Start.Before(cutoff) {
		return false
	}
	st, ok := c.Receiver.(SelfTimed)
	return !ok || !st.SelfTimed()
}
