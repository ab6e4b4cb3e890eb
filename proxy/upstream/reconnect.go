package upstream

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/metamesh/metamesh/protocols"
)

// errSpare closes a reconnect's connection that the pool had no room for.
var errSpare = errors.New("upstream: reconnect not needed")

// Reconnect dials the host once, for the reconnect loop of a host whose
// connection attempt failed. A connection that works joins the pool when
// the pool has room for it (it would have dialed one anyway) and clears
// the pool's dial backoff; otherwise it is closed. stop is true when the
// pool was drained: the host left the config, there is nothing to probe.
func (p *Pool) Reconnect() (stop bool, err error) {
	p.mu.Lock()
	closed, timeout := p.closed, p.opts.ConnectTimeout
	p.mu.Unlock()
	if closed {
		return true, fmt.Errorf("%w: %s", ErrPoolClosed, p.addr)
	}
	cn, err := p.dial(timeout, false)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failedAt, p.failedErr = time.Now(), err
		return false, err
	}
	p.failedErr = nil
	if p.closed || !p.adoptLocked(cn) {
		go cn.close(errSpare)
	}
	return false, nil
}

// adoptLocked adds a freshly dialed connection to the pool if the pool
// has room for one, and reports whether it did.
func (p *Pool) adoptLocked(cn *conn) bool {
	switch p.codec.Model() {
	case protocols.Exclusive:
		if p.open >= p.opts.MaxConnections {
			return false
		}
		p.open++
	case protocols.Pipelined:
		i := slices.Index(p.slots, nil)
		if i < 0 {
			return false
		}
		p.slots[i] = cn
	default:
		if len(p.conns) >= p.opts.MaxConnections {
			return false
		}
	}
	p.conns = append(p.conns, cn)
	return true
}
