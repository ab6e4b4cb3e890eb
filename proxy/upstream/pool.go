package upstream

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
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
	// MaxIdleDedicated bounds the dedicated connections kept reset and
	// idle for reuse (negative: none kept); DedicatedIdleTimeout closes
	// one left idle that long.
	MaxIdleDedicated     int
	DedicatedIdleTimeout time.Duration
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
	// defaultTimeout is the manager's (sweep.go); nil: none.
	defaultTimeout *atomic.Int64

	mu     sync.Mutex
	opts   Options
	conns  []*conn // shared models: all; exclusive: the idle ones
	slots  []*conn // pipelined: the connection of each affinity slot
	open   int     // exclusive: connections open (idle + busy)
	next   int
	dialMu sync.Mutex
	closed bool
	idle   idleSet // dedicated connections reset for reuse

	growing   bool      // shared models: a background dial is under way
	failedAt  time.Time // when the last dial to the host failed
	failedErr error
}

// dialBackoff is how long after a failed dial a pool with no connection
// fails new requests at once with that error instead of dialing again, so
// a host that swallows SYNs doesn't hold every request for a connect
// timeout (outlier detection and retries then move traffic elsewhere).
const dialBackoff = 500 * time.Millisecond

// Stats receives pool events for metrics. A nil field is skipped.
type Stats struct {
	ConnOpened  func(addr string)
	ConnClosed  func(addr string)
	UnknownResp func(addr string)
	// BadFrame: a frame from the host could not be decoded (its
	// connection closes).
	BadFrame func(addr string, codec protocols.Codec)
}

// Open returns the connections the pool has open.
func (p *Pool) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.codec.Model() == protocols.Exclusive {
		return p.open
	}
	return len(p.conns)
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
	if o.MaxIdleDedicated == 0 {
		o.MaxIdleDedicated = DefaultMaxIdleDedicated
	}
	if o.DedicatedIdleTimeout <= 0 {
		o.DedicatedIdleTimeout = DefaultDedicatedIdleTimeout
	}
	return o
}

// Send queues c on a connection of the pool and adds that connection's
// writer to b; the caller flushes b (after its read batch). On success the
// outcome reaches c.Receiver later (two-way calls) or c is released
// (oneway); on error nothing was sent and the caller still owns c.
func (p *Pool) Send(c *Call, b *wire.Batch) error {
	var err error
	// A connection that died but is still in the pool (its read loop has
	// not seen the close yet) is dropped by send; ask for another.
	for range maxStaleSends {
		var cn *conn
		switch p.codec.Model() {
		case protocols.Pipelined:
			cn, err = p.acquireSlot(c.Affinity)
		default:
			cn, err = p.acquire()
		}
		if err != nil {
			return err
		}
		if err = cn.send(c, b); !errors.Is(err, errStale) {
			return err
		}
		// Another goroutine may be closing cn (its read loop saw the
		// end): let it take cn out of the pool before asking again, or
		// the pool hands cn out again (or counts it against the limit).
		for i := 0; i < 1000 && !cn.forgotten.Load(); i++ {
			runtime.Gosched()
		}
	}
	return fmt.Errorf("%w %s: %w", ErrConnect, p.addr, err)
}

// maxStaleSends bounds the connections Send tries when each turns out to
// have closed: past it the host counts as unreachable.
const maxStaleSends = 3

// acquireSlot returns the connection of a pipelined client's affinity
// slot, dialing it the first time: a client's requests to a host always
// travel on one connection, so the server runs them in the order the
// client sent them (a GET after a SET sees it).
func (p *Pool) acquireSlot(affinity uint64) (*conn, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrPoolClosed, p.addr)
	}
	if len(p.slots) != p.opts.MaxConnections {
		p.slots = append(make([]*conn, 0, p.opts.MaxConnections), p.slots[:min(len(p.slots), p.opts.MaxConnections)]...)
		p.slots = p.slots[:p.opts.MaxConnections]
	}
	i := int(affinity % uint64(len(p.slots)))
	if cn := p.slots[i]; cn != nil {
		p.mu.Unlock()
		return cn, nil
	}
	p.mu.Unlock()

	p.dialMu.Lock()
	defer p.dialMu.Unlock()
	p.mu.Lock()
	if i < len(p.slots) && p.slots[i] != nil { // dialed meanwhile
		cn := p.slots[i]
		p.mu.Unlock()
		return cn, nil
	}
	if err := p.failedErr; err != nil && time.Since(p.failedAt) < dialBackoff {
		p.mu.Unlock()
		return nil, err
	}
	timeout := p.opts.ConnectTimeout
	p.mu.Unlock()
	cn, err := p.dial(timeout, false)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failedAt, p.failedErr = time.Now(), err
		return nil, err
	}
	p.failedErr = nil
	p.conns = append(p.conns, cn)
	if i < len(p.slots) {
		p.slots[i] = cn
	}
	return cn, nil
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

// dialShared gets a shared connection when the pool has fewer than
// MaxConnections. With at least one open it returns one of those at once
// and grows the pool in the background, so a request never waits for a
// dial when a connection exists. The first connection is dialed inline,
// one dial at a time, unless a dial failed within dialBackoff.
func (p *Pool) dialShared() (*conn, error) {
	p.mu.Lock()
	if n := len(p.conns); n > 0 {
		cn := p.conns[p.next%n]
		p.next++
		if !p.growing && n < p.opts.MaxConnections {
			p.growing = true
			go p.grow()
		}
		p.mu.Unlock()
		return cn, nil
	}
	p.mu.Unlock()

	p.dialMu.Lock()
	defer p.dialMu.Unlock()
	p.mu.Lock()
	if n := len(p.conns); n > 0 { // another request dialed meanwhile
		cn := p.conns[p.next%n]
		p.next++
		p.mu.Unlock()
		return cn, nil
	}
	if err := p.failedErr; err != nil && time.Since(p.failedAt) < dialBackoff {
		p.mu.Unlock()
		return nil, err
	}
	timeout := p.opts.ConnectTimeout
	p.mu.Unlock()
	cn, err := p.dial(timeout, false)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failedAt, p.failedErr = time.Now(), err
		return nil, err
	}
	p.failedErr = nil
	p.conns = append(p.conns, cn)
	return cn, nil
}

// grow dials one more shared connection in the background.
func (p *Pool) grow() {
	p.mu.Lock()
	timeout := p.opts.ConnectTimeout
	p.mu.Unlock()
	cn, err := p.dial(timeout, false)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.growing = false
	if err != nil {
		p.failedAt, p.failedErr = time.Now(), err
		return
	}
	if p.closed {
		// Drained while dialing: nothing will use it.
		go cn.close(errDrained)
		return
	}
	p.conns = append(p.conns, cn)
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
	cn, err := p.dial(timeout, false)
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

func (p *Pool) dial(timeout time.Duration, dedicated bool) (*conn, error) {
	nc, err := net.DialTimeout("tcp", p.addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrConnect, p.addr, err)
	}
	if p.stats.ConnOpened != nil {
		p.stats.ConnOpened(p.addr)
	}
	cn := newConn(p, nc)
	cn.dedicated = dedicated
	if hs, ok := p.codec.(protocols.Handshaker); ok && p.codec.Model() == protocols.Pipelined {
		frames, n := hs.Handshake(nil)
		cn.handshake = n
		if err := cn.w.Append(func(dst []byte) []byte { return append(dst, frames...) }); err != nil {
			cn.close(err)
			return nil, fmt.Errorf("%w %s: handshake: %w", ErrConnect, p.addr, err)
		}
	}
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
	for i, c := range p.slots {
		if c == cn {
			p.slots[i] = nil
		}
	}
	if p.codec.Model() == protocols.Exclusive && !cn.dedicated {
		p.open--
	}
	p.forgetIdle(cn)
	p.mu.Unlock()
	cn.forgotten.Store(true)
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
	p.closeIdle()
}
