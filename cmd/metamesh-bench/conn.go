package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/metamesh/metamesh/protocols"
)

// loadConn is one connection of a run. Its goroutine keeps len(slots)
// requests in flight: request ID id lives in slot id%len(slots), and each
// response sends that slot's next request, so a read that brings several
// responses answers them with one write.
type loadConn struct {
	nc       net.Conn
	work     *workload
	codec    protocols.Codec // splits the server's replies into frames
	tmpl     *requestTemplate
	reply    string // expected reply prefix
	phase    *atomic.Int32
	slots    []slot
	seq      uint64 // the next ID's high part: sends so far, modulo maxSeq+1
	maxSeq   uint64 // the largest seq whose IDs all fit the template's ID field
	inflight int    // requests in flight

	rbuf, wbuf []byte
	hist       *histogram
	ok, errs   uint64
	firstErr   string
}

type slot struct {
	id       uint64
	sent     time.Time
	busy     bool
	measured bool // sent inside the measured window
}

func newLoadConn(nc net.Conn, work *workload, codec protocols.Codec, tmpl *requestTemplate, pipeline int, reply string, phase *atomic.Int32) *loadConn {
	return &loadConn{
		nc: nc, work: work, codec: codec, tmpl: tmpl, reply: reply, phase: phase,
		slots:  make([]slot, pipeline),
		maxSeq: (tmpl.maxID - uint64(pipeline-1)) / uint64(pipeline),
		rbuf:   make([]byte, 0, 64<<10),
		hist:   newHistogram(),
	}
}

func (c *loadConn) fail(format string, args ...any) {
	c.errs++
	if c.firstErr == "" {
		c.firstErr = fmt.Sprintf(format, args...)
	}
}

// send queues the next request of slot i, unless the run is stopping.
func (c *loadConn) send(i int, now time.Time) {
	p := c.phase.Load()
	if p == phaseStop {
		return
	}
	id := c.seq*uint64(len(c.slots)) + uint64(i)
	// IDs wrap (Thrift's are 32 bits) without breaking id%len(slots) == i.
	if c.seq++; c.seq > c.maxSeq {
		c.seq = 0
	}
	c.wbuf = c.tmpl.appendRequest(c.wbuf, id)
	c.slots[i] = slot{id: id, sent: now, busy: true, measured: p == phaseMeasure}
	c.inflight++
}

// run drives the connection until the run stops and every response is in,
// or the connection fails (its requests in flight then count as errors).
func (c *loadConn) run() {
	now := time.Now()
	for i := range c.slots {
		c.send(i, now)
	}
	var msg protocols.Message
	for {
		if len(c.wbuf) > 0 {
			if _, err := c.nc.Write(c.wbuf); err != nil {
				c.lost(err)
				return
			}
			c.wbuf = c.wbuf[:0]
		}
		if c.phase.Load() == phaseStop && c.inflight == 0 {
			return
		}
		if len(c.rbuf) == cap(c.rbuf) {
			c.rbuf = append(c.rbuf, 0)[:len(c.rbuf)] // grow for a large frame
		}
		n, err := c.nc.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
		now = time.Now()
		c.rbuf = c.rbuf[:len(c.rbuf)+n]
		off := 0
		for off < len(c.rbuf) {
			size, derr := c.codec.Decode(c.rbuf[off:], &msg)
			if derr != nil {
				c.fail("decode: %v", derr)
				c.lost(derr)
				return
			}
			if size == 0 {
				break
			}
			off += size
			c.handle(&msg, now)
		}
		c.rbuf = c.rbuf[:copy(c.rbuf, c.rbuf[off:])]
		if err != nil {
			if len(c.wbuf) == 0 && c.inflight == 0 {
				return
			}
			c.lost(err)
			return
		}
	}
}

// handle checks one frame from the server.
func (c *loadConn) handle(msg *protocols.Message, now time.Time) {
	switch {
	case msg.Kind == protocols.KindHeartbeat:
		c.wbuf = c.codec.HeartbeatReply(c.wbuf, msg)
		return
	case msg.Kind == protocols.KindHeartbeatReply:
		return
	case !msg.Kind.IsResponse():
		c.fail("unexpected %s frame from the server", msg.Kind)
		return
	}
	i := int(msg.ID % uint64(len(c.slots)))
	s := &c.slots[i]
	if !s.busy || s.id != msg.ID {
		c.fail("response to request ID %d, which is not in flight", msg.ID)
		return
	}
	s.busy = false
	c.inflight--
	value, err := c.work.replyValue(msg)
	switch {
	case err != nil:
		c.fail("response %d: %v", msg.ID, err)
	case len(value) < len(c.reply) || value[:len(c.reply)] != c.reply || !c.tmpl.checkArg(value[len(c.reply):], msg.ID):
		c.fail("response %d: %.100q does not echo its request", msg.ID, value)
	case s.measured:
		c.ok++
		c.hist.Record(now.Sub(s.sent))
	}
	c.send(i, now)
}

// lost counts the requests in flight as errors after err ended the
// connection (a read deadline after the run counts as a timeout).
func (c *loadConn) lost(err error) {
	n := c.inflight
	c.inflight = 0
	if n == 0 {
		return
	}
	what := err.Error()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		what = "no response within " + drainTimeout.String() + " after the run"
	}
	c.errs += uint64(n) - 1
	c.fail("%d requests lost: %s", n, what)
	for i := range c.slots {
		c.slots[i].busy = false
	}
}
