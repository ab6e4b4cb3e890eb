package upstream

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// peer is what an upstream connection's server said of its limits
// (protocols.PeerLimiter: HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS and
// GOAWAY). The pool sends a connection no more calls at once than the
// server takes, opening another connection when every one is full
// (acquire_shared.go); a new connection takes its first call once the
// server's settings came (dial); a connection whose server goes away takes
// no new call, its calls the server did not process are sent again
// elsewhere (Resend), and it closes once the others are answered.
type peer struct {
	limiter protocols.PeerLimiter // nil: the codec has no limits to say
	seen    protocols.PeerLimits  // the limiter's last report; read loop only
	limits  protocols.PeerLimits  // guarded by conn.mu
	away    atomic.Bool           // limits.Away, read without the lock
	settled chan struct{}         // closed once the settings came, or the connection closed
	once    sync.Once
}

// errFull: the connection has as many calls in flight as its server
// takes; nothing was sent (Pool.Send tries another connection).
var errFull = errors.New("upstream: connection at its server's limit of requests in flight")

// ErrUnprocessed is the cause of a Fail whose request the server did not
// process: it went away (HTTP/2 GOAWAY) before reading it. Nothing reached
// the application, so the request may be sent again whatever the route's
// retry policy says: receivers call Resend.
var ErrUnprocessed = errors.New("upstream: the server went away without processing the request")

// maxResends bounds how often one call is sent again after servers went
// away without processing it.
const maxResends = 3

// Resend sends c again, on another connection of the pool it failed on,
// when err (a Fail's) says its server did not process it, at most
// maxResends times. It reports whether c went out again: its outcome then
// reaches its receiver later. A receiver calls it first in Fail, holding
// what Cancel's callers hold.
func Resend(c *Call, err error, b *wire.Batch) bool {
	if !errors.Is(err, ErrUnprocessed) || c.cn == nil || c.resends >= maxResends || c.RequestStream {
		// A streamed request's later parts went out on c's connection
		// alone: its first part can't go elsewhere without them.
		return false
	}
	c.resends++
	return c.cn.pool.Send(c, b) == nil
}

// fullLocked reports whether cn takes no new call: its server goes away,
// or has as many in flight as it takes. Called with cn.mu held.
func (cn *conn) fullLocked() bool {
	if cn.limiter == nil {
		return false
	}
	l := &cn.peer.limits
	return l.Away || (l.MaxInFlight > 0 && cn.calls.pending() >= int(l.MaxInFlight))
}

// hasRoom reports whether cn may take a call now (not full, not closed).
func (cn *conn) hasRoom() bool {
	if cn.limiter == nil {
		return true
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return !cn.closed && !cn.fullLocked()
}

// markSettled ends the wait of a dial for the server's settings.
func (cn *conn) markSettled() {
	if cn.settled != nil {
		cn.once.Do(func() { close(cn.settled) })
	}
}

// readLimits takes what the frame just decoded changed in the server's
// limits. Read loop only.
func (cn *conn) readLimits() {
	l := cn.limiter.PeerLimits()
	if l == cn.seen {
		return
	}
	cn.seen = l
	cn.mu.Lock()
	prev := cn.peer.limits
	cn.peer.limits = l
	leaving := l.Away && (!prev.Away || l.LastID < prev.LastID)
	var unprocessed []*Call
	if leaving {
		unprocessed, _ = cn.calls.leave(func(c *Call) bool { return c.id > l.LastID }, nil, false)
	}
	idle := cn.calls.pending() == 0
	cn.mu.Unlock()
	if l.Settled {
		cn.markSettled()
	}
	if !l.Away {
		return
	}
	if !prev.Away {
		cn.away.Store(true)
		cn.pool.retire(cn)
	}
	if len(unprocessed) > 0 {
		// Not on the read loop: their resends may dial, and the calls
		// below LastID still have replies to read here.
		err := fmt.Errorf("%w: %s sent GOAWAY", ErrUnprocessed, cn.pool.addr)
		go func() {
			var b wire.Batch
			for _, c := range unprocessed {
				c.Receiver.Fail(c, protocols.ReasonNoHealthyUpstream, err, &b)
			}
			b.Flush()
		}()
	}
	if idle {
		cn.shut(errGoingAway, wire.ErrClosed, nil)
	}
}

// errGoingAway closes a connection whose server went away once its calls
// are answered.
var errGoingAway = errors.New("upstream: the server went away (GOAWAY)")

// retire takes cn out of the pool's choice for new calls; it stays open
// (and counted) until it closes.
func (p *Pool) retire(cn *conn) {
	p.mu.Lock()
	cn.home.forget(cn)
	p.mu.Unlock()
}
