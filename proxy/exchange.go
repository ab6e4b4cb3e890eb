package proxy

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/router"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// exchange follows one two-way request whose route has a timeout or
// retries, from its arrival to its reply, across its tries. It owns the
// request's only copy, which every try borrows; exactly one outcome (a
// response, a local reply) reaches the client, and whatever arrives after
// it is dropped. Requests on routes without policies skip all of this.
type exchange struct {
	d       *downstream
	req     protocols.Message
	seq     uint64
	rt      *router.Route
	cl      *cluster.Cluster
	service string
	key     string
	hasKey  bool
	ob      observers // its sampling decisions and arrival
	set     []protocols.Header
	timeout time.Duration // the smaller of the route's and the request's own; 0: none

	mu       sync.Mutex
	done     bool
	try      *upstream.Call // the try whose outcome counts, or nil
	tries    int
	last     *cluster.Host
	retrying bool // the current try holds a retry budget slot
	// hops counts the MOVED and ASK replies followed (a Redis Cluster);
	// asking sends the next try after ASKING.
	hops     int
	asking   bool
	failover bool // a connect failure already moved a try to another host
	// relayed: part of the response went to the client (a streamed
	// response, relay.go), or the request is streamed: no retry any more.
	relayed bool
	// stream: the request is streamed (relay_request.go): held are its
	// later parts that came before its try was sent (a fault delay).
	stream   bool
	held     []protocols.Message
	gen      uint64 // counts timed tries: a per-try timer acts on its own only
	timer    *time.Timer
	tryTimer *time.Timer
}

// newExchange takes over r, a two-way request routed and admitted, with
// set the attributes to set on each try and timeout its timeout (0: none).
func newExchange(r *request, set []protocols.Header, timeout time.Duration) *exchange {
	d, m := r.d, r.m
	ex := &exchange{d: d, seq: r.seq, rt: r.rt, cl: r.cl, service: r.label, key: r.key, hasKey: r.hasKey, ob: r.ob, set: set, timeout: timeout}
	ex.req.Kind, ex.req.ID, ex.req.Status, ex.req.Marks, ex.req.More = m.Kind, m.ID, m.Status, m.Marks, m.More
	ex.req.Raw = append([]byte(nil), m.Raw...)
	for _, h := range m.Headers.All() {
		ex.req.Headers.Add(h.Key, h.Value)
	}
	d.inflight.Add(1)
	d.active.Inc()
	return ex
}

// start sends the first try to host, adding the writers it touches to b:
// on the client's read loop, or after a fault-injected delay.
func (ex *exchange) start(host *cluster.Host, b *wire.Batch) {
	ex.mu.Lock()
	if ex.done {
		ex.mu.Unlock()
		return // its client reset it during the fault delay
	}
	if ex.timeout > 0 {
		ex.timer = time.AfterFunc(ex.timeout, ex.expire)
	}
	ex.sendLocked(host, b)
	ex.mu.Unlock()
}

// sendLocked makes one try on host. A try that can't be sent is failed
// (and maybe retried) at once.
func (ex *exchange) sendLocked(host *cluster.Host, b *wire.Batch) {
	for {
		c := upstream.BorrowCall(&ex.req)
		c.Set, c.ResponseSet, c.Host, c.Receiver = ex.set, ex.rt.ResponseSet, host, ex
		c.Service, c.Route, c.ClusterName, c.Start = ex.service, ex.rt.Name, ex.cl.Name, ex.ob.start
		c.Affinity, c.RequestStream = ex.d.affinity, ex.stream
		host.Begin()
		ex.try, ex.last = c, host
		ex.tries++
		if p := ex.rt.Retry; p != nil && p.PerTryTimeout > 0 && !ex.stream {
			ex.gen++
			gen := ex.gen
			ex.tryTimer = time.AfterFunc(p.PerTryTimeout, func() { ex.tryExpired(c, gen) })
		}
		var err error
		if ex.asking {
			ex.asking = false
			err = ex.d.sendAsking(c, ex.cl, b)
		} else {
			err = ex.d.send(c, ex.cl, b)
		}
		if err == nil {
			if ex.stream {
				ex.sentStreamLocked(c, b)
			}
			return
		}
		ex.endTryLocked()
		host.End()
		c.Release()
		on := router.RetryOn(0)
		if errors.Is(err, upstream.ErrConnect) {
			on = router.RetryConnectFailure
			next := ex.d.connectFailed(ex.cl, host, ex.key, ex.hasKey)
			if next != nil && !ex.failover {
				// Nothing was sent: not a try of the retry policy's.
				ex.failover, ex.tries, host = true, ex.tries-1, next
				continue
			}
		}
		if host = ex.retryHostLocked(on); host == nil {
			ex.localLocked(b, sendFailure(err), fmt.Sprintf("metamesh: route %s: cluster %s: %v", ex.rt.Name, ex.cl.Name, err))
			return
		}
	}
}

// retryHostLocked decides whether a try that failed with on is retried,
// taking a retry budget slot if so, and picks the host: another one than
// the last try's when the cluster has one. A connect failure takes no
// budget slot: the budget keeps retries from piling load onto upstreams,
// and a try that never connected put none on any.
func (ex *exchange) retryHostLocked(on router.RetryOn) *cluster.Host {
	p := ex.rt.Retry
	if ex.done || ex.relayed || p == nil || p.On&on == 0 || ex.tries > p.Retries {
		return nil
	}
	host := ex.cl.PickOther(ex.key, ex.hasKey, ex.last)
	if host == nil {
		return nil
	}
	if on != router.RetryConnectFailure {
		if !ex.cl.Load.BeginRetry(ex.cl.Limits) {
			return nil
		}
		ex.retrying = true
	}
	ex.d.srv.metrics.Retries.WithLabelValues(ex.d.codecName, ex.service, ex.rt.Name, ex.cl.Name).Inc()
	return host
}

// endTryLocked forgets the current try.
func (ex *exchange) endTryLocked() {
	ex.try = nil
	ex.stopTryLocked()
}

// stopTryLocked ends the current try's own timer and retry slot.
func (ex *exchange) stopTryLocked() {
	if ex.tryTimer != nil {
		ex.tryTimer.Stop()
		ex.tryTimer = nil
	}
	if ex.retrying {
		ex.cl.Load.EndRetry()
		ex.retrying = false
	}
}

// Respond takes an upstream response (upstream.Receiver).
func (ex *exchange) Respond(c *upstream.Call, resp *protocols.Message, b *wire.Batch) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if !ex.current(c) {
		return
	}
	if resp.More {
		ex.relayPartLocked(c, resp, b)
		return
	}
	ex.unrelayLocked(c)
	ex.endTryLocked()
	if t, rd, ok := ex.d.redirection(ex.cl, c.Host, resp, ex.hops); ok {
		// Where the slot is (MOVED) or this key is (ASK): not a try of
		// the retry policy's.
		ex.hops++
		host := t.Asked(rd.Addr)
		if !rd.Ask {
			host = t.Moved(rd.Slot, rd.Addr)
		}
		c.Host.End()
		c.Release()
		ex.asking, ex.tries = rd.Ask, ex.tries-1
		ex.sendLocked(host, b)
		return
	}
	class := protocols.Classify(ex.d.codec, resp)
	ex.d.report(ex.cl, c.Host, class == protocols.ClassOK)
	if class == protocols.ClassUnavailable {
		if host := ex.retryHostLocked(router.RetryUnavailable); host != nil {
			c.Host.End()
			c.Release()
			ex.sendLocked(host, b)
			return
		}
	}
	ex.respondLocked(b, resp)
	c.Host.End()
	c.Release()
}

// Fail takes a try's failure (upstream.Receiver): its connection closed.
func (ex *exchange) Fail(c *upstream.Call, reason protocols.Reason, err error, b *wire.Batch) {
	if status := departure(err); status != "" {
		ex.clientLeft(c, status)
		return
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if !ex.current(c) || upstream.Resend(c, err, b) {
		return
	}
	ex.unrelayLocked(c)
	ex.endTryLocked()
	host := c.Host // c is zeroed once released
	host.End()
	c.Release()
	on := router.RetryOn(0)
	if errors.Is(err, upstream.ErrReset) {
		on = router.RetryReset
		ex.d.report(ex.cl, host, false)
	}
	if host := ex.retryHostLocked(on); host != nil {
		ex.sendLocked(host, b)
		return
	}
	ex.localLocked(b, reason, fmt.Sprintf("metamesh: route %s: cluster %s: %v", ex.rt.Name, ex.cl.Name, err))
}

// current reports whether c is the try whose outcome counts; if not, the
// outcome is late (the request timed out or moved on to another try) and
// c is released. Called with ex.mu held.
func (ex *exchange) current(c *upstream.Call) bool {
	if !ex.done && c == ex.try {
		return true
	}
	c.Host.End()
	c.Release()
	ex.d.srv.metrics.LateReplies.WithLabelValues(ex.d.codecName).Inc()
	return false
}

// expire ends the request at its timeout.
func (ex *exchange) expire() {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.done {
		return
	}
	ex.abandonLocked()
	var b wire.Batch
	ex.localLocked(&b, protocols.ReasonTimeout,
		fmt.Sprintf("metamesh: route %s: cluster %s: no reply within %v", ex.rt.Name, ex.cl.Name, ex.timeout))
	b.Flush()
}

// tryExpired ends try c (the gen-th timed try) at the per-try timeout:
// retried as a reset when the policy allows, else the request times out.
// A timer that fired while a later try was being sent finds another gen,
// even when that try reuses c's pooled Call.
func (ex *exchange) tryExpired(c *upstream.Call, gen uint64) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.done || c != ex.try || gen != ex.gen {
		return
	}
	ex.abandonLocked()
	var b wire.Batch
	defer b.Flush()
	if host := ex.retryHostLocked(router.RetryReset); host != nil {
		ex.sendLocked(host, &b)
		return
	}
	ex.localLocked(&b, protocols.ReasonTimeout,
		fmt.Sprintf("metamesh: route %s: cluster %s: no reply within the per-try timeout %v", ex.rt.Name, ex.cl.Name, ex.rt.Retry.PerTryTimeout))
}

// abandonLocked gives up on the current try: its connection forgets it
// (multiplexed) or is closed (models that can't skip a reply), so a
// server that never answers can't pile up calls.
func (ex *exchange) abandonLocked() {
	c := ex.try
	ex.endTryLocked()
	if c == nil {
		return
	}
	ex.unrelayLocked(c)
	ex.d.report(ex.cl, c.Host, false) // no reply in time counts against the host
	// Cancel runs under ex.mu, while c can't be released by anyone else
	// (its outcome needs ex.mu). What it leaves to do after, closing the
	// connection, fails c through Fail, which takes ex.mu: that runs
	// after letting go of it (Fail then finds c no longer current), and c
	// is not touched again here.
	var took bool
	var after func()
	if ex.relayed {
		// A relayed stream is stopped at the upstream too (relay.go).
		var b wire.Batch
		took, after = upstream.CancelStream(c, &b)
		b.Flush()
	} else {
		took, after = upstream.Cancel(c)
	}
	if took {
		c.Host.End()
		c.Release()
	}
	if after != nil {
		ex.mu.Unlock()
		after()
		ex.mu.Lock()
	}
}

// relayPartLocked writes a part of a streamed response to the client. At
// the first, the try's own timer and retry slot end: nothing is retried
// once the client got part of an answer; the request's timeout still
// bounds the whole stream.
func (ex *exchange) relayPartLocked(c *upstream.Call, resp *protocols.Message, b *wire.Batch) {
	if !ex.relayed {
		ex.relayed = true
		ex.stopTryLocked()
	}
	ex.d.relayPart(c, ex, ex.req.ID, ex.seq, ex.rt.ResponseSet, resp, b)
}

// unrelayLocked forgets c, the current try, as a relayed stream before it
// is released.
func (ex *exchange) unrelayLocked(c *upstream.Call) {
	if ex.relayed {
		ex.d.relays.drop(ex.req.ID, c)
	}
}

// respondLocked answers the client with resp (with its own request ID).
func (ex *exchange) respondLocked(b *wire.Batch, resp *protocols.Message) {
	d := ex.d
	d.reply(ex.seq, b, func(dst []byte) []byte {
		out, err := d.encode(dst, resp, ex.req.ID, ex.rt.ResponseSet)
		if err != nil {
			d.srv.log.Warn("could not re-encode an upstream response", zap.String("cluster", ex.cl.Name), zap.Error(err))
			return d.codec.ErrorReply(dst, &ex.req, protocols.ReasonNoHealthyUpstream, "metamesh: bad upstream response: "+err.Error())
		}
		return out
	})
	status := "ok"
	if resp.Kind == protocols.KindError {
		status = "error"
	}
	ex.finishLocked(status, len(resp.Raw))
}

// localLocked answers the client with the codec's error reply for reason.
func (ex *exchange) localLocked(b *wire.Batch, reason protocols.Reason, text string) {
	d := ex.d
	d.reply(ex.seq, b, func(dst []byte) []byte { return d.errorReply(dst, &ex.req, reason, text) })
	d.srv.metrics.LocalReplies.WithLabelValues(d.codecName, reason.String()).Inc()
	ex.finishLocked(reason.String(), 0)
}

// finishLocked marks the request answered and ends its accounting.
func (ex *exchange) finishLocked(status string, respBytes int) {
	ex.done = true
	if ex.stream {
		ex.d.relays.dropExchange(ex.req.ID, ex)
		ex.held = nil
	}
	if ex.timer != nil {
		ex.timer.Stop()
	}
	d := ex.d
	upstream := ""
	if ex.last != nil {
		upstream = ex.last.Addr
	}
	d.account(&ex.req, ex.ob, ex.service, ex.rt.Name, ex.cl.Name, upstream, status, respBytes)
	d.active.Dec()
	ex.cl.Load.End()
	d.inflight.Add(-1)
}

var _ upstream.Receiver = (*exchange)(nil)
