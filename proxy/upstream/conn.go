package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// pairing matches the replies read from one connection with the calls
// waiting on it (pair_id.go, pair_fifo.go). Its methods are called with
// the connection's lock held.
type pairing interface {
	// id returns the request ID c goes out with.
	id(c *Call) uint64
	// wait registers a two-way call that went out with id.
	wait(c *Call, id uint64)
	// take removes and returns the call resp answers (returns it and
	// leaves it waiting when resp has More: a streamed response goes on).
	// nil with a nil error: the reply is late and is dropped; with an
	// error: the connection's replies no longer match its calls.
	take(resp *protocols.Message) (*Call, error)
	// pending is how many calls wait.
	pending() int
	// find returns the call waiting with id, or nil (nil always where
	// replies pair by order).
	find(id uint64) *Call
	// cancel takes c back if it can leave alone; broken reports that c
	// still waits but can't, so the connection must close for c to end.
	cancel(c *Call) (took, broken bool)
	// leave takes back the calls pick selects, appending them to out.
	// Where they can't leave alone it takes none unless closing (the
	// caller closes the connection next), and broken reports that pick
	// selected some: the connection must close for them to end.
	leave(pick func(*Call) bool, out []*Call, closing bool) (_ []*Call, broken bool)
}

// conn is one upstream connection, whatever the codec's model: its pool's
// pairing matches replies with calls, and the acquire strategy it belongs
// to (home) is told whenever a call leaves it.
type conn struct {
	pool *Pool
	home holder
	nc   net.Conn
	w    *wire.Writer
	loop *wire.Loop // the event loop reading it; nil: a goroutine (loop.go)

	mu     sync.Mutex
	calls  pairing
	closed bool
	// forgotten is set once the pool no longer holds the connection
	// (under the pool's mu).
	forgotten bool
	handshake int         // replies to the codec's handshake still to come; read loop only
	sweep     *time.Timer // fails calls past the default timeout (sweep.go)
	sweeping  bool        // sweep is armed
	lease                 // a dedicated connection's state (acquire_dedicated.go)
	// dec reads a codec's connection whose frames need its state
	// (protocols.ConnCodec); nil for other codecs.
	dec protocols.ConnDecoder
	// encode writes a call's request: the codec's Encode, or dec's when
	// the server's flow control limits what may be sent
	// (protocols.ConnEncoder).
	encode func(dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) ([]byte, error)
	// sender is dec when it holds back what the server's flow control
	// does not take yet (its Released frames follow).
	sender protocols.ConnEncoder
	// relayer is dec when it passes on credit for streamed requests;
	// creds is the credit read (relay.go). Read loop only.
	relayer protocols.Relayer
	creds   []protocols.StreamCredit
	// delivering is the call the read loop is handing a part of its
	// streamed answer (a response with More), outside mu: a receiver
	// that cancels it meanwhile must not release it, since that delivery
	// will (it finds the call no longer current). Under mu.
	delivering *Call
	// departed is the delivering call when its client went away
	// (Withdraw) or reset its stream (DepartStream) meanwhile; departErr
	// says which. It stays registered, and the delivery ends it once the
	// part is handed over, unless a cancel took it out first (deliver).
	// Under mu.
	departed  *Call
	departErr error
	peer      // the server's limits, when dec has them (limits.go)
}

func newConn(p *Pool, home holder, nc net.Conn) *conn {
	cn := &conn{pool: p, home: home, nc: nc, w: wire.NewWriter(nc, 0), calls: p.pairing(), encode: p.codec.Encode}
	if cc, ok := p.codec.(protocols.ConnCodec); ok {
		cn.dec = cc.NewConnDecoder(false)
		if ce, ok := cn.dec.(protocols.ConnEncoder); ok {
			cn.encode, cn.sender = ce.Encode, ce
		}
		cn.relayer, _ = cn.dec.(protocols.Relayer)
		if pl, ok := cn.dec.(protocols.PeerLimiter); ok {
			cn.peer.limiter, cn.peer.settled = pl, make(chan struct{})
		}
	}
	return cn
}

var errConnClosed = errors.New("upstream: connection closed")

// errStale is returned by conn.send on a connection that closed before
// the call could be queued: nothing was sent.
var errStale = errors.New("upstream: connection closed before the request was sent")

// ErrReset is the cause of a Fail when the upstream connection closed
// before the response came.
var ErrReset = errors.New("upstream: reset")

// errCancelled closes a connection whose call a caller gave up on when
// its pairing can't skip one reply (pipelined, exclusive).
var errCancelled = errors.New("a call on it was cancelled")

// Cancel withdraws a two-way call its receiver no longer wants (it timed
// out). The caller must hold what c's receiver needs to take an outcome
// (so c can't be answered and released meanwhile). When c can leave its
// connection alone (multiplexed) it is taken back at once: took is true,
// the receiver will not be called, and the caller releases c. Either way
// Cancel may return after, to be run once the caller has let go of its
// lock: when c can't leave alone (pipelined, exclusive) it closes the
// connection (c's late reply would go to the next call), which fails c
// through its receiver; when c was taken back it lets the connection's
// strategy know (a drained pool's connection closes once idle). A
// streaming call the read loop is handing a part of its answer leaves its
// connection but is not taken: that delivery, finding it no longer
// current, releases it.
func Cancel(c *Call) (took bool, after func()) {
	cn := c.cn
	if cn == nil {
		return false, nil
	}
	took, _, after = cn.cancel(c)
	return took, after
}

// cancel is Cancel, also reporting whether c left cn while the read loop
// was handing it a part of its answer: then c is not taken (that
// delivery's receiver releases it, finding it no longer current) but no
// further part reaches it.
func (cn *conn) cancel(c *Call) (took, left bool, after func()) {
	cn.mu.Lock()
	took, broken := cn.calls.cancel(c)
	if took && cn.delivering == c {
		took, left = false, true
	}
	cn.mu.Unlock()
	switch {
	case broken:
		return false, false, func() { cn.close(errCancelled) }
	case took || left:
		return took, true, cn.settle
	}
	return false, false, nil
}

// send writes c with the ID its pairing gives it and registers it to
// await its response. The frame is queued under cn.mu so that the order
// of registration is the order on the wire.
func (cn *conn) send(c *Call, b *wire.Batch) error {
	twoWay := c.Req.Kind != protocols.KindOneway
	cn.mu.Lock()
	if cn.closed {
		cn.mu.Unlock()
		return errStale
	}
	if twoWay && cn.fullLocked() {
		cn.mu.Unlock()
		return errFull
	}
	id := cn.calls.id(c)
	var encErr error
	err := cn.w.Queue(func(dst []byte) []byte {
		out, e := cn.encode(dst, &c.Req, id, c.Set)
		if e != nil {
			encErr = e
			return dst
		}
		return out
	})
	if encErr != nil {
		cn.mu.Unlock()
		cn.settle() // nothing was sent: an exclusive connection is free
		return fmt.Errorf("upstream: encode request: %w", encErr)
	}
	if err != nil {
		// The connection died under us (its writer failed) before its
		// read loop noticed: nothing of c was sent, so the pool sends it
		// on another connection.
		cn.mu.Unlock()
		cn.close(err)
		return fmt.Errorf("%w: %w", errStale, err)
	}
	b.Add(cn.w)
	if twoWay {
		if cn.delivering == c {
			// c was released by the delivery the read loop is finishing
			// and is used again: that delivery is not this call's.
			cn.delivering = nil
			if cn.departed == c {
				cn.departed, cn.departErr = nil, nil
			}
		}
		c.cn, c.id = cn, id
		c.streaming = c.RequestStream
		cn.calls.wait(c, id)
		if c.Start.IsZero() { // a mirrored copy: its age counts from here
			c.Start = time.Now()
		}
		cn.armSweepLocked()
	}
	cn.mu.Unlock()
	if !twoWay {
		cn.settle()
		c.Release()
	}
	return nil
}

// settle tells cn's strategy that a call left it (answered, sent oneway,
// not encoded, cancelled, timed out or withdrawn).
func (cn *conn) settle() { cn.home.settle(cn) }

func (cn *conn) readLoop() {
	codec := cn.pool.codec
	var dec wire.Decoder = codec
	if rd, ok := codec.(protocols.ResponseDecoder); ok {
		dec = responseDecoder{rd}
	}
	conn := cn.dec
	var owed []byte
	if conn != nil {
		dec = conn
	}
	var batch wire.Batch // the read loop flushes it after each read
	var flush func()
	if pr, ok := conn.(protocols.Promoter); ok {
		// At the end of each read, the responses that hold a whole
		// message and nothing more so far go to their calls as first
		// parts (relay.go).
		var pm protocols.Message
		flush = func() {
			for pr.Promote(&pm) {
				_ = cn.deliver(&pm, &batch) // pairs by ID: never an error
			}
		}
	}
	err := wire.NewReader(cn.nc, dec, wire.ReadOptions{Batch: &batch}).Run(func(m *protocols.Message) error {
		if cn.limiter != nil {
			cn.readLimits()
		}
		if conn != nil {
			// What the connection owes the server (HTTP/2 ACKs, credit)
			// goes out with the next request (within wire.AckDelay), not
			// in a write of its own, which would cost the server a read.
			if owed = conn.Owed(owed[:0]); len(owed) > 0 {
				if err := cn.w.QueueSoon(func(dst []byte) []byte { return append(dst, owed...) }, wire.AckDelay); err != nil {
					return err
				}
			}
			if cn.sender != nil && cn.sender.HasReleased() {
				// Under the writer's lock, as requests are encoded.
				batch.Add(cn.w)
				if err := cn.w.Queue(cn.sender.Released); err != nil {
					return err
				}
			}
			if cn.relayer != nil {
				cn.passCredits(&batch)
			}
		}
		switch {
		case m.Kind == protocols.KindHeartbeat:
			batch.Add(cn.w)
			return cn.w.Queue(func(dst []byte) []byte { return codec.HeartbeatReply(dst, m) })
		case m.Kind.IsResponse() && cn.handshake > 0:
			cn.handshake--
			if m.Kind == protocols.KindError {
				return fmt.Errorf("%w: %q", errHandshake, bytes.TrimSpace(m.Raw))
			}
		case m.Kind.IsResponse() && cn.resetLeft.Load() > 0:
			return cn.resetReplied(m)
		case m.Kind.IsResponse() || m.Kind == protocols.KindHeartbeatReply:
			return cn.deliver(m, &batch)
		}
		return nil
	}, flush)
	var de *wire.DecodeError
	switch {
	case errors.As(err, &de):
		if cn.pool.stats.BadFrame != nil {
			cn.pool.stats.BadFrame(cn.pool.addr, codec)
		}
		cn.pool.log.Warn("closing upstream connection on a bad frame", zap.String("upstream", cn.pool.addr), zap.Error(err))
	case errors.Is(err, errHandshake):
		cn.pool.log.Warn("closing upstream connection: the server refused the proxy's handshake", zap.String("upstream", cn.pool.addr), zap.Error(err))
	case errors.Is(err, errResetRefused):
		cn.pool.logResetRefused(err)
	}
	cn.close(err)
}

// deliver gives a response (or a heartbeat reply) to what waits for it:
// the stream's pusher, else the call it answers. Read loop only.
func (cn *conn) deliver(m *protocols.Message, batch *wire.Batch) error {
	// One lock per frame: the stream's pusher, else the call.
	cn.mu.Lock()
	if p := cn.pusherLocked(); p != nil {
		cn.mu.Unlock()
		p.Push(m, batch) // a streaming connection's (stream.go)
		return nil
	}
	if !m.Kind.IsResponse() {
		cn.mu.Unlock()
		return nil // a push no stream takes
	}
	c, err := cn.calls.take(m)
	if c != nil && m.More {
		cn.delivering = c
	}
	cn.mu.Unlock()
	if c == nil {
		if cn.pool.stats.UnknownResp != nil {
			cn.pool.stats.UnknownResp(cn.pool.addr)
		}
		return err
	}
	// Before the outcome is handled: an exclusive connection must be free
	// for a request that follows this response, not get ErrOverloaded. A
	// streamed response's parts before its last leave the call where it
	// is.
	more := m.More
	if !more {
		cn.settle()
	}
	c.Receiver.Respond(c, m, batch)
	if more {
		cn.mu.Lock()
		cn.delivering = nil
		var departed error
		if cn.departed == c {
			departed = cn.departErr
			cn.departed, cn.departErr = nil, nil
			if took, _ := cn.calls.cancel(c); !took {
				departed = nil // a cancel took it out meanwhile: not this delivery's
			}
		}
		cn.mu.Unlock()
		if departed != nil {
			// Its client left during the delivery: its receiver ends it.
			cn.settle()
			c.Receiver.Fail(c, protocols.ReasonNoHealthyUpstream, departed, batch)
		}
	}
	return nil
}

// errHandshake marks a connection whose server refused the handshake.
var errHandshake = errors.New("upstream: the server refused the handshake")

// closeIfIdle closes cn if no call waits on it. What was queued on it
// (a oneway request) is still written first.
func (cn *conn) closeIfIdle() {
	cn.mu.Lock()
	idle := cn.calls.pending() == 0
	cn.mu.Unlock()
	if idle {
		cn.shut(errDrained, wire.ErrClosed, nil)
	}
}

var errDrained = errors.New("upstream: pool drained")

// close fails every call waiting on cn and removes it from its pool.
func (cn *conn) close(cause error) { cn.shut(cause, errConnClosed, nil) }

// everyCall selects every call: the connection is closing.
func everyCall(*Call) bool { return true }

// shut closes cn, its writer with werr (wire.ErrClosed writes what is
// queued first), and fails the calls waiting on it: with a timeout those
// for which late reports true, the others with a reset.
func (cn *conn) shut(cause, werr error, late func(*Call) bool) {
	cn.mu.Lock()
	if cn.closed {
		cn.mu.Unlock()
		return
	}
	cn.closed = true
	cn.markSettled() // a dial waiting for the server's settings gives up
	waiting, _ := cn.calls.leave(everyCall, nil, true)
	push := cn.push
	cn.push = nil
	cn.mu.Unlock()
	if push != nil {
		push.Closed(cause)
	}

	cn.w.CloseWithError(werr)
	cn.pool.forget(cn)
	err := fmt.Errorf("%w: connection to %s closed: %v", ErrReset, cn.pool.addr, cause)
	var batch wire.Batch
	for _, c := range waiting {
		if late != nil && late(c) {
			c.Receiver.Fail(c, protocols.ReasonTimeout, cause, &batch)
			continue
		}
		c.Receiver.Fail(c, protocols.ReasonNoHealthyUpstream, err, &batch)
	}
	batch.Flush()
}

// responseDecoder decodes upstream frames as responses for codecs that
// can't tell them apart from requests.
type responseDecoder struct{ protocols.ResponseDecoder }

func (r responseDecoder) Decode(buf []byte, msg *protocols.Message) (int, error) {
	return r.DecodeResponse(buf, msg)
}

// isClosed reports whether cn has closed (its pool forgets it, or has).
func (cn *conn) isClosed() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.closed
}
