package upstream

import (
	"fmt"

	"github.com/metamesh/metamesh/proxy/wire"
)

// Dedicated is an upstream connection of one client alone, outside the
// pool's shared connections: for a transaction or a blocking command that
// must not share a pipeline with other clients' requests.
type Dedicated struct{ cn *conn }

// Dedicated dials a connection for one client's exclusive use.
func (p *Pool) Dedicated() (*Dedicated, error) {
	p.mu.Lock()
	closed, timeout := p.closed, p.opts.ConnectTimeout
	p.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("%w: %s", ErrPoolClosed, p.addr)
	}
	cn, err := p.dial(timeout, true)
	if err != nil {
		return nil, err
	}
	return &Dedicated{cn: cn}, nil
}

// Send queues c on the connection, as Pool.Send does.
func (d *Dedicated) Send(c *Call, b *wire.Batch) error { return d.cn.send(c, b) }

// Release closes the connection once the calls sent on it are answered.
func (d *Dedicated) Release() {
	d.cn.released.Store(true)
	d.cn.closeIfIdle()
}
