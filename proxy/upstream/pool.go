package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

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
	// Unset: DefaultOptions' or DefaultExclusiveConnections, but one per
	// event loop for a pipelined codec's plaintext connections on loops.
	MaxConnections int
	// MaxIdleDedicated bounds the dedicated connections kept reset and
	// idle for reuse (negative: none kept); DedicatedIdleTimeout closes
	// one left idle that long.
	MaxIdleDedicated     int
	DedicatedIdleTimeout time.Duration
	// TLS makes every connection speak TLS (nil: plaintext); TLSKey names
	// those settings, part of the pool's key (Manager.Pool).
	TLS    *tls.Config
	TLSKey string
}

// DefaultOptions are used for zero fields of a pool whose codec shares
// connections (multiplexed or pipelined).
var DefaultOptions = Options{ConnectTimeout: time.Second, MaxConnections: 2}

// DefaultExclusiveConnections is the default MaxConnections of an exclusive
// pool: one connection per request in flight, so it bounds concurrency per
// host (Envoy's default connection circuit breaker is the same).
const DefaultExclusiveConnections = 1024

// Stats receives pool events for metrics. A nil field is skipped.
type Stats struct {
	ConnOpened  func(addr string)
	ConnClosed  func(addr string)
	UnknownResp func(addr string)
	// BadFrame: a frame from the host could not be decoded (its
	// connection closes).
	BadFrame func(addr string, codec protocols.Codec)
}

// holder is the acquire strategy a connection belongs to (acquire_*.go).
type holder interface {
	// settle is told that a call left cn (see conn.settle).
	settle(cn *conn)
	// forget drops cn, which closed. Called with the pool's lock held.
	forget(cn *conn)
	// private reports whether its connections carry one client's calls
	// alone (dedicated): they are never swept by the default timeout, and
	// are closed when that client leaves with calls in flight.
	private() bool
}

// acquirer is the strategy that finds each call one of the pool's
// connections (acquire_shared.go, acquire_affinity.go,
// acquire_exclusive.go).
type acquirer interface {
	holder
	// acquire returns the connection to send c on.
	acquire(c *Call) (*conn, error)
	// The methods below are called with the pool's lock held.
	// adopt takes a connection a reconnect dialed if there is room for
	// it, and reports whether it did.
	adopt(cn *conn) bool
	// conns appends the strategy's open connections to dst.
	conns(dst []*conn) []*conn
	// open is how many connections the strategy has open.
	open() int
}

// Pool holds the connections to one host for one codec.
type Pool struct {
	addr  string
	codec protocols.Codec
	log   *zap.Logger
	stats Stats
	// defaultTimeout is the manager's (sweep.go); nil: none.
	defaultTimeout *atomic.Int64

	// What the codec's model chose when the pool was made.
	pairing    func() pairing
	acq        acquirer
	ded        dedicated
	defaultMax int                  // MaxConnections when unset
	perLoop    bool                 // or, for plaintext, one per event loop
	handshaker protocols.Handshaker // nil: no handshake on new connections
	resetter   protocols.Resetter   // nil: dedicated connections aren't reused

	loops *wire.Loops   // the proxy's event loops; nil: goroutine mode (loop.go)
	hints atomic.Uint64 // loop hints of connections not in an affinity slot

	closed  atomic.Bool // drained; set under mu
	flights singleflight.Group

	mu        sync.Mutex
	opts      Options
	failedAt  time.Time // when the last dial to the host failed
	failedErr error
}

// newPool makes the pool of codec's connections to addr. The codec's
// model is consulted here only, to choose the pool's strategies.
func newPool(addr string, codec protocols.Codec, log *zap.Logger, stats Stats, timeout *atomic.Int64, loops *wire.Loops, opts Options) *Pool {
	p := &Pool{addr: addr, codec: codec, log: log, stats: stats, defaultTimeout: timeout, loops: loops, defaultMax: DefaultOptions.MaxConnections}
	p.ded.p = p
	p.handshaker, _ = codec.(protocols.Handshaker)
	switch codec.Model() {
	case protocols.Multiplexed:
		p.pairing, p.acq = newByID, &shared{p: p}
	case protocols.Pipelined:
		p.pairing, p.acq = newFIFO, &affinity{p: p}
		p.resetter, _ = codec.(protocols.Resetter)
		p.perLoop = loops != nil && OnLoop(codec)
	default: // exclusive: one call at a time pairs whatever a protocol does
		p.pairing, p.acq = newFIFO, &exclusive{p: p}
		p.defaultMax = DefaultExclusiveConnections
	}
	p.opts = p.withDefaults(opts)
	return p
}

// Open returns the connections the pool has open.
func (p *Pool) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acq.open()
}

// SetOptions updates the limits used for future connections.
func (p *Pool) SetOptions(o Options) {
	p.mu.Lock()
	p.opts = p.withDefaults(o)
	p.mu.Unlock()
}

func (p *Pool) options() Options {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.opts
}

func (p *Pool) withDefaults(o Options) Options {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultOptions.ConnectTimeout
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = p.defaultMax
		if p.perLoop && o.TLS == nil {
			// One connection per loop, as Envoy's Redis proxy keeps one per
			// worker thread: each loop's turn sends all its clients'
			// commands in one write, which the server reads and answers
			// at once (docs/proxy-config.md, "I/O mode").
			o.MaxConnections = p.loops.Len()
		}
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
	for stale, full := 0, 0; stale < maxStaleSends && full < maxFullSends; {
		var cn *conn
		if cn, err = p.acq.acquire(c); err != nil {
			return err
		}
		err = cn.send(c, b)
		switch {
		case errors.Is(err, errFull):
			// Its server's limit filled since acquire looked: another
			// connection (a new one when every one is full).
			full++
		case errors.Is(err, errStale):
			// A connection that died but is still in the pool (its read
			// loop has not seen the close yet); ask for another. Another
			// goroutine may still be closing cn (its read loop saw the
			// end): take cn out of the pool now, or the pool hands it out
			// again (or counts it against the limit) until that goroutine
			// gets there.
			stale++
			p.forget(cn)
		default:
			return err
		}
	}
	if errors.Is(err, errFull) {
		return fmt.Errorf("%w %s: %w", ErrOverloaded, p.addr, err)
	}
	return fmt.Errorf("%w %s: %w", ErrConnect, p.addr, err)
}

// maxStaleSends bounds the connections Send tries when each turns out to
// have closed: past it the host counts as unreachable.
const maxStaleSends = 3

// maxFullSends bounds the connections Send tries when each turns out to
// be full (its server's limit of requests in flight filled meanwhile by
// other calls, as a burst shares each new connection's dial): past it the
// call is refused as overloaded.
const maxFullSends = 64

// errClosed is the error of a request to a drained pool.
func (p *Pool) errClosed() error { return fmt.Errorf("%w: %s", ErrPoolClosed, p.addr) }

// lockOpen locks p.mu for an acquire, unless the pool is drained.
func (p *Pool) lockOpen() error {
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		return p.errClosed()
	}
	return nil
}

// forget drops a dead connection from the pool, once however many
// goroutines find it dead.
func (p *Pool) forget(cn *conn) {
	p.mu.Lock()
	if cn.forgotten {
		p.mu.Unlock()
		return
	}
	cn.home.forget(cn)
	cn.forgotten = true
	p.mu.Unlock()
	if p.stats.ConnClosed != nil {
		p.stats.ConnClosed(p.addr)
	}
}

// Drain stops new sends; each connection closes once its calls in flight
// are answered, so removing a host from the config fails no request.
func (p *Pool) Drain() {
	p.mu.Lock()
	p.closed.Store(true)
	conns := p.acq.conns(nil)
	p.mu.Unlock()
	for _, cn := range conns {
		cn.closeIfIdle()
	}
	p.ded.closeIdle()
}

// closeIfDrained closes cn once it is idle if its pool is drained or its
// server went away (limits.go): the settle of the strategies that keep
// connections for any call.
func (cn *conn) closeIfDrained() {
	if cn.pool.closed.Load() || cn.away.Load() {
		cn.closeIfIdle()
	}
}
