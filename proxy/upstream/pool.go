package upstream

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// ErrPoolClosed is returned by Send on a pool drained by a config change:
// nothing was sent, so the caller may ask the Manager again.
var ErrPoolClosed = errors.New("upstream: pool drained")

// ErrConnect is returned by Send when no connection to the host could be
// made.
var ErrConnect = errors.New("upstream: connect")

// ErrOverloaded is returned by Send when an exclusive pool has no idle
// connection and may not open another.
var ErrOverloaded = errors.New("upstream: connection pool exhausted")

// Options configures the connections of one pool.
type Options struct {
	ConnectTimeout time.Duration
	// MaxConnections: for shared models the connections opened per host
	// (requests are spread over them); for exclusive, the most open at once.
	MaxConnections int
}

// DefaultOptions are used for zero fields of a pool whose codec shares
// connections (multiplexed or pipelined).
var DefaultOptions = Options{ConnectTimeout: time.Second, MaxConnections: 2}

// DefaultExclusiveConnections is the default MaxConnections of an exclusive
// pool: one connection per request in flight, so it bounds concurrency per
// host (Envoy's default connection circuit breaker is the same).
const DefaultExclusiveConnections = 1024

// Pool holds the connections to one host for one codec.
type Pool struct {
	addr  string
	codec protocols.Codec
	log   *zap.Logger
	stats Stats

	mu     sync.Mutex
	opts   Options
	conns  []*conn // shared models: all; exclusive: the idle ones
	open   int     // exclusive: connections open (idle + busy)
	next   int
	dialMu sync.Mutex
	closed bool
}

// Stats receives pool events for metrics. A nil field is skipped.
type Stats struct {
	ConnOpened  func(addr string)
	ConnClosed  func(addr string)
	UnknownResp func(addr string)
}

// SetOptions updates the limits used for future connections.
func (p *Pool) SetOptions(o Options) {
	p.mu.Lock()
	p.opts = withDefaults(o, p.codec.Model())
	p.mu.Unlock()
}

func (p *Pool) options() Options {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opts
}

func withDefaults(o Options, model protocols.Model) Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultOptions.ConnectTimeout
	}
	switch {
	case o.MaxConnections > 0:
	case model == protocols.Exclusive:
		o.MaxConnections = DefaultExclusiveConnections
	default:
		o.MaxConnections = DefaultOptions.MaxConnections
	}
	return o
}

// Send queues c on a connection of the pool and adds that connection's
// writer to b; the caller flushes b (after its read batch). On success the
// outcome reaches c.Receiver later (two-way calls) or c is released
// (oneway); on error nothing was sent and the caller still owns c.
func (p *Pool) Send(c *Call, b *wire.Batch) error {
	cn, err := p.acquire()
	if err != nil {
		return err
	}
	return cn.send(c, b)
}

func (p *Pool) acquire() (*conn, error) {
	if p.codec.Model() == protocols.Exclusive {
		return p.acquireExclusive()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrPoolClosed, p.addr)
	}
	if len(p.conns) >= p.opts.MaxConnections {
		cn := p.conns[p.next%len(p.conns)]
		p.next++
		p.mu.Unlock()
		return cn, nil
	}
	p.mu.Unlock()
	return p.dialShared()
}

// dialShared opens one more shared connection. Dials are serialized so a
// burst of requests to a new host opens MaxConnections, not one per request.
func (p *Pool) dialShared() (*conn, error) {
	p.dialMu.Lock()
	defer p.dialMu.Unlock()
	p.mu.Lock()
	if n := len(p.conns); n >= p.opts.MaxConnections && n > 0 {
		cn := p.conns[p.next%n]
		p.next++
		p.mu.Unlock()
		return cn, nil
	}
	timeout := p.opts.ConnectTimeout
	p.mu.Unlock()
	cn, err := p.dial(timeout)
	if err != nil {
		p.mu.Lock()
		n := len(p.conns)
		var fallback *conn
		if n > 0 {
			fallback = p.conns[p.next%n]
			p.next++
		}
		p.mu.Unlock()
		if fallback != nil {
			return fallback, nil
		}
		return nil, err
	}
	p.mu.Lock()
	p.conns = append(p.conns, cn)
	p.mu.Unlock()
	return cn, nil
}

func (p *Pool) acquireExclusive() (*conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrPoolClosed, p.addr)
	}
	if n := len(p.conns); n > 0 {
		cn := p.conns[n-1]
		p.conns = p.conns[:n-1]
		p.mu.Unlock()
		return cn, nil
	}
	if p.open >= p.opts.MaxConnections {
		p.mu.Unlock()
		return nil, ErrOverloaded
	}
	p.open++
	timeout := p.opts.ConnectTimeout
	p.mu.Unlock()
	cn, err := p.dial(timeout)
	if err != nil {
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
		return nil, err
	}
	return cn, nil
}

// release puts an exclusive connection back once its call is answered.
func (p *Pool) release(cn *conn) {
	cn.mu.Lock()
	dead := cn.closed
	cn.mu.Unlock()
	if dead {
		return // close already took it out of the pool's count
	}
	p.mu.Lock()
	if !p.closed {
		p.conns = append(p.conns, cn)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	cn.closeIfIdle()
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func (p *Pool) dial(timeout time.Duration) (*conn, error) {
	nc, err := net.DialTimeout("tcp", p.addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrConnect, p.addr, err)
	}
	if p.stats.ConnOpened != nil {
		p.stats.ConnOpened(p.addr)
	}
	cn := newConn(p, nc)
	go cn.readLoop()
	return cn, nil
}

// forget drops a dead connection from the pool.
func (p *Pool) forget(cn *conn) {
	p.mu.Lock()
	for i, c := range p.conns {
		if c == cn {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			break
		}
	}
	if p.codec.Model() == protocols.Exclusive {
		p.open--
	}
	p.mu.Unlock()
	if p.stats.ConnClosed != nil {
		p.stats.ConnClosed(p.addr)
	}
}

// Drain stops new sends; each connection closes once its calls in flight
// are answered, so removing a host from the config fails no request.
func (p *Pool) Drain() {
	p.mu.Lock()
	p.closed = true
	conns := append([]*conn(nil), p.conns...)
	p.mu.Unlock()
	for _, cn := range conns {
		cn.closeIfIdle()
	}
}
