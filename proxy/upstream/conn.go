package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

// conn is one upstream connection. Multiplexed: calls wait in a map by the
// ID the proxy gave them on this connection. Pipelined and exclusive: calls
// wait in a FIFO that matches the order frames were written.
type conn struct {
	pool *Pool
	nc   net.Conn
	w    *wire.Writer

	mu     sync.Mutex
	byID   map[uint64]*Call
	fifo   []*Call
	nextID uint64
	closed bool
	// forgotten is set once the pool no longer holds the connection.
	forgotten atomic.Bool
	closeCh   chan struct{}
	// released marks a dedicated connection its owner is done with: it
	// is recycled once its calls are answered (idle.go).
	released  atomic.Bool
	dedicated bool         // not one of the pool's connections
	owner     *Dedicated   // the client's handle of a dedicated connection in use
	handshake int          // replies to the codec's handshake still to come; read loop only
	resetLeft atomic.Int32 // replies to the reset still to come
	resetSeen int          // replies to the reset checked; read loop only
	sweep     *time.Timer  // fails calls past the default timeout (sweep.go)
	sweeping  bool         // sweep is armed
}

func newConn(p *Pool, nc net.Conn) *conn {
	return &conn{
		pool:    p,
		nc:      nc,
		w:       wire.NewWriter(nc, 0),
		byID:    make(map[uint64]*Call),
		closeCh: make(chan struct{}),
	}
}

var errConnClosed = errors.New("upstream: connection closed")

// errStale is returned by conn.send on a connection that closed before
// the call could be queued: nothing was sent.
var errStale = errors.New("upstream: connection closed before the request was sent")

// ErrReset is the cause of a Fail when the upstream connection closed
// before the response came.
var ErrReset = errors.New("upstream: reset")

// errCancelled closes a connection whose call a caller gave up on when
// the connection's model can't skip one reply (pipelined, exclusive).
var errCancelled = errors.New("a call on it was cancelled")

// Cancel withdraws a two-way call its receiver no longer wants (it timed
// out). The caller must hold what c's receiver needs to take an outcome
// (so c can't be answered and released meanwhile). On a multiplexed
// connection c is taken back at once: took is true, the receiver will not
// be called, and the caller releases c. Models that can't skip one reply
// (pipelined, exclusive) return closeConn instead, to be run once the
// caller has let go of its lock: it closes the connection (its late reply
// would go to the next call), which fails c through its receiver.
func Cancel(c *Call) (took bool, closeConn func()) {
	cn := c.cn
	if cn == nil {
		return false, nil
	}
	if cn.pool.codec.Model() != protocols.Multiplexed {
		return false, func() { cn.close(errCancelled) }
	}
	cn.mu.Lock()
	took = cn.byID[c.id] == c
	if took {
		delete(cn.byID, c.id)
	}
	cn.mu.Unlock()
	return took, nil
}

// send writes c with this connection's ID and registers it to await its
// response. The frame is appended under c.mu so that FIFO order equals
// write order for pipelined protocols.
func (cn *conn) send(c *Call, b *wire.Batch) error {
	codec := cn.pool.codec
	twoWay := c.Req.Kind != protocols.KindOneway
	cn.mu.Lock()
	if cn.closed {
		cn.mu.Unlock()
		return errStale
	}
	id := c.Req.ID
	if codec.Model() == protocols.Multiplexed {
		id = cn.allocID()
	}
	var encErr error
	err := cn.w.Queue(func(dst []byte) []byte {
		out, e := codec.Encode(dst, &c.Req, id, c.Set)
		if e != nil {
			encErr = e
			return dst
		}
		return out
	})
	if encErr != nil {
		cn.mu.Unlock()
		if codec.Model() == protocols.Exclusive {
			cn.pool.release(cn) // nothing was sent: the connection is free
		}
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
		c.cn, c.id = cn, id
		if codec.Model() == protocols.Multiplexed {
			cn.byID[id] = c
		} else {
			cn.fifo = append(cn.fifo, c)
		}
		if c.Start.IsZero() { // a mirrored copy: its age counts from here
			c.Start = time.Now()
		}
		cn.armSweepLocked()
	}
	cn.mu.Unlock()
	if !twoWay {
		if codec.Model() == protocols.Exclusive {
			cn.pool.release(cn)
		}
		c.Release()
	}
	return nil
}

// maxID bounds the IDs the proxy gives requests on one connection: the
// narrowest request ID among codecs is Thrift's signed 32-bit seqid.
const maxID = 1<<31 - 1

// allocID returns the next free request ID on cn, wrapping around and
// skipping 0 and IDs still in flight. Called with cn.mu held.
func (cn *conn) allocID() uint64 {
	for {
		cn.nextID++
		if cn.nextID > maxID {
			cn.nextID = 1
		}
		if _, busy := cn.byID[cn.nextID]; !busy {
			return cn.nextID
		}
	}
}

// take removes and returns the call a response answers, or nil.
func (cn *conn) take(resp *protocols.Message) *Call {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.pool.codec.Model() == protocols.Multiplexed {
		c := cn.byID[resp.ID]
		delete(cn.byID, resp.ID)
		return c
	}
	if len(cn.fifo) == 0 {
		return nil
	}
	c := cn.fifo[0]
	cn.fifo[0] = nil
	cn.fifo = cn.fifo[1:]
	return c
}

func (cn *conn) readLoop() {
	codec := cn.pool.codec
	var dec wire.Decoder = codec
	if rd, ok := codec.(protocols.ResponseDecoder); ok {
		dec = responseDecoder{rd}
	}
	var batch wire.Batch
	err := wire.ReadFrames(cn.nc, dec, func(m *protocols.Message) error {
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
		case m.Kind.IsResponse():
			c := cn.take(m)
			if c == nil {
				if cn.pool.stats.UnknownResp != nil {
					cn.pool.stats.UnknownResp(cn.pool.addr)
				}
				if codec.Model() != protocols.Multiplexed {
					return fmt.Errorf("upstream: response with no request outstanding")
				}
				return nil
			}
			if codec.Model() == protocols.Exclusive {
				// Idle before the outcome is handled: a client whose next
				// request follows this response must find it free, not
				// get ErrOverloaded.
				cn.pool.release(cn)
			}
			c.Receiver.Respond(c, m, &batch)
			switch {
			case cn.released.Load():
				cn.recycle()
			case codec.Model() != protocols.Exclusive && cn.pool.isClosed():
				cn.closeIfIdle()
			}
		}
		return nil
	}, batch.Flush)
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

// errHandshake marks a connection whose server refused the handshake.
var errHandshake = errors.New("upstream: the server refused the handshake")

// closeIfIdle closes cn if no call waits on it.
func (cn *conn) closeIfIdle() {
	cn.mu.Lock()
	idle := len(cn.byID) == 0 && len(cn.fifo) == 0
	cn.mu.Unlock()
	if idle {
		cn.close(errDrained)
	}
}

var errDrained = errors.New("upstream: pool drained")

// close fails every call waiting on cn and removes it from its pool.
func (cn *conn) close(cause error) { cn.shut(cause, nil) }

// shut closes cn as close does; the calls for which late reports true
// fail with a timeout, the others with a reset.
func (cn *conn) shut(cause error, late func(*Call) bool) {
	cn.mu.Lock()
	if cn.closed {
		cn.mu.Unlock()
		return
	}
	cn.closed = true
	waiting := make([]*Call, 0, len(cn.byID)+len(cn.fifo))
	for id, c := range cn.byID {
		waiting = append(waiting, c)
		delete(cn.byID, id)
	}
	waiting = append(waiting, cn.fifo...)
	cn.fifo = nil
	cn.mu.Unlock()

	cn.w.CloseWithError(errConnClosed)
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
