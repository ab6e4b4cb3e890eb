package upstream

import (
	"errors"
	"fmt"

	"github.com/metamesh/metamesh/proxy/wire"
)

// Dedicated is an upstream connection of one client alone, outside the
// pool's shared connections: for a transaction or a blocking command that
// must not share a pipeline with other clients' requests. When the codec
// can reset a connection (protocols.Resetter), a released one is reset
// and kept for the next client (see idle.go) instead of closed, so a
// transaction costs no connect to the server.
type Dedicated struct{ cn *conn }

// Dedicated returns a connection for one client's exclusive use: an idle
// one already reset, or a new one.
func (p *Pool) Dedicated() (*Dedicated, error) {
	p.mu.Lock()
	closed, timeout := p.closed, p.opts.ConnectTimeout
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: %s", ErrPoolClosed, p.addr)
	}
	d := &Dedicated{}
	if p.takeIdle(d) {
		return d, nil
	}
	cn, err := p.dial(timeout, true)
	if err != nil {
		return nil, err
	}
	cn.mu.Lock()
	cn.owner = d
	cn.mu.Unlock()
	d.cn = cn
	return d, nil
}

// Send queues c on the connection, as Pool.Send does.
func (d *Dedicated) Send(c *Call, b *wire.Batch) error { return d.cn.send(c, b) }

// Release lets the connection go once the calls sent on it are answered
// (a client that left mid-call never gets them, but they still come):
// then it is reset for reuse, or closed. Only the first Release of d
// counts; the connection may serve another client afterwards.
func (d *Dedicated) Release() {
	cn := d.cn
	cn.mu.Lock()
	mine := cn.owner == d
	if mine {
		cn.owner = nil
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
	busy := len(cn.fifo) > 0 || len(cn.byID) > 0
	if mine {
		cn.owner = nil
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
