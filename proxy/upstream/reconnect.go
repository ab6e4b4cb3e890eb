package upstream

import "errors"

// errSpare closes a reconnect's connection that the pool had no room for.
var errSpare = errors.New("upstream: reconnect not needed")

// Reconnect dials the host once, for the reconnect loop of a host whose
// connection attempt failed (cluster.Host.ConnectFailed paces it). Unlike
// a request it dials within dialBackoff: it is what ends the backoff. A
// connection that works joins the pool when the pool has room for it (it
// would have dialed one anyway); otherwise it is closed. stop is true
// when the pool was drained: the host left the config, there is nothing
// to probe.
func (p *Pool) Reconnect() (stop bool, err error) {
	if p.closed.Load() {
		return true, p.errClosed()
	}
	cn, err := p.dial(p.acq, p.nextHint())
	if err != nil {
		return false, err
	}
	p.mu.Lock()
	kept := !p.closed.Load() && p.acq.adopt(cn)
	p.mu.Unlock()
	if !kept {
		go cn.close(errSpare)
	}
	return false, nil
}
