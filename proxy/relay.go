package proxy

import (
	"sync"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// relays are a client connection's streamed responses in progress
// (docs/triple-streams.md, piece 4): the upstream call answering each, by
// the client's request ID, so the credit the client gives a stream
// (protocols.Relayer) goes to that call's upstream stream. A call is added
// before its first part is written to the client and dropped before it
// is released.
type relays struct {
	mu sync.Mutex
	m  map[uint64]relay
}

// relay is one streamed response: its call, and its exchange when a
// route's policies follow it (nil: the downstream itself receives it).
type relay struct {
	c  *upstream.Call
	ex *exchange
}

func (r *relays) add(id uint64, c *upstream.Call, ex *exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[uint64]relay)
	}
	r.m[id] = relay{c, ex}
}

func (r *relays) drop(id uint64, c *upstream.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.m[id]; ok && e.c == c {
		delete(r.m, id)
	}
}

// dropExchange drops id's stream when ex follows it (ex ended).
func (r *relays) dropExchange(id uint64, ex *exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.m[id]; ok && e.ex == ex {
		delete(r.m, id)
	}
}

// credit passes n bytes of the client's credit for id on to its upstream.
func (r *relays) credit(id uint64, n uint32, b *wire.Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.m[id]; ok && e.c != nil {
		upstream.Credit(e.c, n, b) // under mu: c can't be dropped and released meanwhile
	}
}

// resetRelay ends the relayed stream id, which its client reset: its upstream
// stream is cancelled and the request accounted as cancelled.
func (d *downstream) resetRelay(id uint64, b *wire.Batch) {
	r := &d.relays
	r.mu.Lock()
	e, ok := r.m[id]
	if !ok {
		r.mu.Unlock()
		return
	}
	delete(r.m, id)
	if e.ex != nil {
		r.mu.Unlock()
		e.ex.clientReset(e.c, b) // under the exchange's lock, which guards c
		return
	}
	// Under mu, c can't be answered and released meanwhile (settle drops
	// it from r first).
	took, after := upstream.DepartStream(e.c, b)
	r.mu.Unlock()
	if !took {
		return // a part is being delivered: that delivery ends it (upstream.DepartStream)
	}
	if after != nil {
		after()
	}
	c := e.c
	d.account(&c.Req, callObservers(c), c.Service, c.Route, c.ClusterName, c.Host.Addr, statusCancelled, 0)
	d.end(c)
	c.Release()
}

// resetRelays ends every relayed stream of a client whose read side
// ended, as if it had reset each.
func (d *downstream) resetRelays() {
	if d.relayer == nil {
		return
	}
	d.relays.mu.Lock()
	ids := make([]uint64, 0, len(d.relays.m))
	for id := range d.relays.m {
		ids = append(ids, id)
	}
	d.relays.mu.Unlock()
	var b wire.Batch
	for _, id := range ids {
		d.resetRelay(id, &b)
	}
	b.Flush()
}

// statusCancelled is the metric and access log status of a stream its
// client reset while its response was relayed.
const statusCancelled = "cancelled"

// clientReset ends the exchange whose relayed try c its client reset (c
// nil: a streamed request whose try is not sent yet).
func (ex *exchange) clientReset(c *upstream.Call, b *wire.Batch) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if !ex.done && c == nil && ex.try == nil {
		ex.finishLocked(statusCancelled, 0)
		return
	}
	if ex.done || c != ex.try {
		return
	}
	took, after := upstream.CancelStream(c, b)
	ex.endTryLocked()
	if took {
		c.Host.End()
		c.Release()
	} // else a part is being delivered, waiting for ex.mu: it finds c no longer current and releases it
	ex.finishLocked(statusCancelled, 0)
	if after != nil {
		ex.mu.Unlock()
		after()
		ex.mu.Lock()
	}
}

// passCredits passes the credit the client gave its streams since the
// last frame on to the upstreams of those that are relayed. Read loop only.
func (d *downstream) passCredits() {
	d.creds = d.relayer.Credits(d.creds[:0])
	for _, cr := range d.creds {
		if cr.Reset {
			d.resetRelay(cr.ID, &d.batch)
			continue
		}
		d.relays.credit(cr.ID, cr.N, &d.batch)
	}
}

// relayPart writes a part of a streamed response (resp.More) to the
// client, on the stream of request id, as it comes; ex is the exchange
// that follows it, if any.
func (d *downstream) relayPart(c *upstream.Call, ex *exchange, id, seq uint64, set []protocols.Header, resp *protocols.Message, b *wire.Batch) {
	d.relays.add(id, c, ex)
	d.reply(seq, b, func(dst []byte) []byte {
		out, err := d.encode(dst, resp, id, set)
		if err != nil {
			d.srv.log.Warn("could not re-encode a part of an upstream response", zap.String("cluster", c.ClusterName), zap.Error(err))
			return dst
		}
		return out
	})
}
