package proxy

import (
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// Streamed requests (docs/triple-streams.md, piece 5): a client or
// bidirectional stream comes as a first part, a request with More that
// is routed once like any other (forward.go: not mirrored, not retried,
// its timeout bounding the whole stream), then as later parts
// (protocols.KindPart) that go, as they come, to the upstream stream the
// first part opened. The stream is in the client's relays (relay.go) from
// its send to its end, so a part finds its call, and the client's
// RST_STREAM cancels it as it cancels a relayed response. The client
// gets credit for its stream as the upstream gives the proxy credit for
// it (Credited).

// promoteGrace is how long a client's request that holds a whole message
// waits for its end before it is routed as a stream, on read loops that
// can wake for it (wire.Reader.CanWake): a unary call whose END_STREAM
// comes in a later read (a client that ends its request with an empty
// DATA frame, a read that filled the buffer) stays a unary call, retried
// and mirrored; a bidirectional client that waits for an answer to its
// first message waits this much longer, once.
const promoteGrace = 2 * time.Millisecond

// promote ends a read of a client's connection (and the moment a request
// held back for promoteGrace is due): the requests that hold a whole
// message and nothing more so far are routed now as streams (a
// bidirectional client may wait for an answer before it sends again),
// then what the read queued is flushed. Read loop only.
func (d *downstream) promote(pr protocols.Promoter) {
	for pr.Promote(&d.promoted) {
		_ = d.handle(&d.promoted) // a Triple request: no session to quit
	}
	if d.waiter != nil {
		if at := d.waiter.PromoteAt(); !at.IsZero() {
			d.rd.WakeAt(at) // the read loop comes back then, read or not
		}
	}
	d.payOwed() // a refused stream's RST_STREAM
	d.endOwed() // the read loop flushes the batch next
}

// relayRequestPart sends a later part of a streamed request to the
// upstream stream of its first part. A part of a stream already answered
// (or reset, or refused) is dropped. Read loop only.
func (d *downstream) relayRequestPart(m *protocols.Message) {
	r := &d.relays
	r.mu.Lock()
	e, ok := r.m[m.ID]
	if !ok || e.ex != nil {
		r.mu.Unlock()
		if ok {
			e.ex.sendPart(m, &d.batch)
		}
		return
	}
	err := upstream.SendPart(e.c, m, &d.batch) // under mu: c can't be released meanwhile
	r.mu.Unlock()
	if err != nil {
		d.srv.log.Debug("could not send a part of a streamed request", zap.Error(err))
	}
}

// creditClient gives the client n more bytes of credit for the stream of
// its request id, adding the writer to b.
func (d *downstream) creditClient(id uint64, n uint32, b *wire.Batch) {
	if d.relayer == nil {
		return
	}
	if d.w.Queue(func(dst []byte) []byte { return d.relayer.Credit(dst, id, n) }) == nil {
		b.Add(d.w)
	}
}

// Credited passes the upstream's credit for a streamed request on to its
// client (upstream.Crediter).
func (d *downstream) Credited(c *upstream.Call, n uint32, b *wire.Batch) {
	d.creditClient(c.Req.ID, n, b)
}

// Credited passes the upstream's credit for the streamed request on to
// its client (upstream.Crediter): it reads only what never changes.
func (ex *exchange) Credited(_ *upstream.Call, n uint32, b *wire.Batch) {
	ex.d.creditClient(ex.req.ID, n, b)
}

// streamRequest makes ex follow a streamed request: it is in the client's
// relays from now on (its parts may come before its try is sent, during
// a fault delay), and it is never retried.
func (ex *exchange) streamRequest() {
	ex.stream, ex.relayed = true, true
	ex.d.relays.add(ex.req.ID, nil, ex)
}

// sentStreamLocked notes c, the try just sent, as the stream's call, and
// sends the parts held until then.
func (ex *exchange) sentStreamLocked(c *upstream.Call, b *wire.Batch) {
	ex.d.relays.add(ex.req.ID, c, ex)
	for i := range ex.held {
		if err := upstream.SendPart(c, &ex.held[i], b); err != nil {
			break // the connection closed: c fails
		}
	}
	ex.held = nil
}

// sendPart sends a later part of the streamed request to its try, or
// holds a copy while the try is not sent yet.
func (ex *exchange) sendPart(part *protocols.Message, b *wire.Batch) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	switch {
	case ex.done:
	case ex.try == nil:
		// Bounded by the client's stream window: it gets no credit
		// before the upstream gives some.
		held := *part
		held.Headers = protocols.Headers{}
		held.Raw = append([]byte(nil), part.Raw...)
		ex.held = append(ex.held, held)
	default:
		_ = upstream.SendPart(ex.try, part, b) // a failed connection fails the try
	}
}

var _ upstream.Crediter = (*downstream)(nil)
var _ upstream.Crediter = (*exchange)(nil)
