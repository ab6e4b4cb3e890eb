package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// dialBackoff is how long after a failed dial the pool fails requests
// that need a new connection at once, with that error, instead of dialing
// again, so a host that swallows SYNs doesn't hold every request for a
// connect timeout (the request moves to another host, and the host's
// reconnect loop, cluster.Host.ConnectFailed, probes it with Reconnect).
const dialBackoff = 500 * time.Millisecond

// backoffLocked returns the error of a dial that failed less than
// dialBackoff ago, if any. Called with p.mu held.
func (p *Pool) backoffLocked() error {
	if p.failedErr != nil && time.Since(p.failedAt) < dialBackoff {
		return p.failedErr
	}
	return nil
}

// connect dials a connection for h, or fails at once within dialBackoff
// of a failed dial. hint picks its event loop, if any (loop.go).
func (p *Pool) connect(h holder, hint uint64) (*conn, error) {
	p.mu.Lock()
	err := p.backoffLocked()
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return p.dial(h, hint)
}

// dialOnce runs fill for the calls that need the connection of one slot
// of the pool (the shared pool's next one, an affinity slot): those that
// come while a fill runs share its outcome instead of dialing one each.
// fill looks again for the connection before it dials (connect).
func (p *Pool) dialOnce(slot int, fill func() (*conn, error)) (*conn, error) {
	v, err, _ := p.flights.Do(strconv.Itoa(slot), func() (any, error) { return fill() })
	if err != nil {
		return nil, err
	}
	return v.(*conn), nil
}

// dial opens a connection to the host for h: the only place the pool
// dials. A failure starts dialBackoff, a success ends it. The connection
// is ready for calls: the codec's handshake is queued first, its read
// loop runs, and the server's limits are known (limits.go) when it has
// any to say. hint picks its event loop, if any (loop.go).
func (p *Pool) dial(h holder, hint uint64) (*conn, error) {
	p.mu.Lock()
	timeout, tlsCfg := p.opts.ConnectTimeout, p.opts.TLS
	p.mu.Unlock()
	nc, err := dialTimeout(p.addr, timeout, tlsCfg)
	p.mu.Lock()
	if err != nil {
		err = fmt.Errorf("%w %s: %w", ErrConnect, p.addr, err)
		p.failedAt, p.failedErr = time.Now(), err
	} else {
		p.failedErr = nil
	}
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if p.stats.ConnOpened != nil {
		p.stats.ConnOpened(p.addr)
	}
	lp := p.loopFor(nc, hint)
	cn := newConn(p, h, lp.Enroll(nc))
	cn.loop = lp
	if p.handshaker != nil {
		frames, n := p.handshaker.Handshake(nil)
		cn.handshake = n
		if err := cn.w.Append(func(dst []byte) []byte { return append(dst, frames...) }); err != nil {
			cn.close(err)
			return nil, fmt.Errorf("%w %s: handshake: %w", ErrConnect, p.addr, err)
		}
	}
	go cn.readLoop()
	if cn.settled != nil {
		// Its first call waits for the server's limits (limits.go).
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-cn.settled:
		case <-t.C:
			cn.close(errNoSettings)
		}
		if cn.isClosed() {
			return nil, fmt.Errorf("%w %s: no settings from the server within %v", ErrConnect, p.addr, timeout)
		}
	}
	return cn, nil
}

// errNoSettings closes a new connection whose server did not say its
// limits within the connect timeout.
var errNoSettings = errors.New("upstream: no settings from the server")

// dialTimeout connects to addr, with a TLS handshake when tlsCfg is set,
// all within timeout. The TLS server name is addr's host unless tlsCfg
// names one.
func dialTimeout(addr string, timeout time.Duration, tlsCfg *tls.Config) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || tlsCfg == nil {
		return nc, err
	}
	if tlsCfg.ServerName == "" && !tlsCfg.InsecureSkipVerify {
		tlsCfg = tlsCfg.Clone()
		tlsCfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(nc, tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// Dial opens a connection to addr as the pools do (TLS when tlsCfg is
// set, the server name from addr unless the config has one), for a
// caller that talks to a host outside a pool (a Redis Cluster's slot
// map reads).
func Dial(addr string, timeout time.Duration, tlsCfg *tls.Config) (net.Conn, error) {
	return dialTimeout(addr, timeout, tlsCfg)
}
