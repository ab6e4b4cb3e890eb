package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/accesslog"
	"github.com/metamesh/metamesh/proxy/authz"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/router"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// downstream is one client connection: a read loop decoding frames in
// place, routing each request, and a writer shared with the upstream read
// loops that deliver responses.
type downstream struct {
	srv      *Server
	affinity uint64 // keeps this client's requests to a pipelined host on one connection
	lis      *listener
	cfg      *config.Listener // as accepted
	codec    protocols.Codec  // frames the connection: cfg's, or Triple (accepted)
	// codecName is codec's name: the protocol label of the connection's
	// metrics, spans and access log lines.
	codecName string
	nc        net.Conn
	rd        *wire.Reader
	w         *wire.Writer
	readDone  chan struct{} // closed when the read loop has ended
	rejected  bool          // a reply to an undecodable frame is queued; read loop only
	inflight  atomic.Int64
	active    prometheus.Gauge
	batch     wire.Batch            // writers touched by the current read; read loop only
	order     *replyOrder           // pipelined protocols only
	session   protocols.Session     // codecs with per-connection state only
	conn      protocols.ConnDecoder // codecs whose frames need the connection's state only
	// encode writes a response: the codec's Encode, or conn's when the
	// client's flow control limits what may be sent (protocols.ConnEncoder).
	encode func(dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) ([]byte, error)
	owed   []byte // what conn owes the client; read loop only
	// sender is conn when it holds back what the client's flow control
	// does not take yet; released is its Released, made once.
	sender   protocols.ConnEncoder
	released func([]byte) []byte
	// relayer is conn when it passes on credit for streamed responses;
	// relays are those in progress, creds the credit read (relay.go).
	relayer protocols.Relayer
	relays  relays
	creds   []protocols.StreamCredit
	// endRead runs once the frames of a read are handled, before the read
	// loop flushes the batch: the requests to relay now (relay_request.go)
	// and the credit owed; nil when there is nothing to do.
	endRead  func()
	promoted protocols.Message
	// waiter is the connection's decoder when it holds requests back
	// before promoting them (relay_request.go).
	waiter protocols.PromoteWaiter
	// owedSoon: frames owed to the client were queued during this read
	// (payOwed); endOwed sends them at its end unless replies are on
	// their way to carry them.
	owedSoon bool
	local    []byte // a session's reply, before it is queued
	splitter protocols.Splitter
	// variant is the session's say on upstream connections (Redis: its
	// database); upCodec holds the codec it chose (a codecRef) for the
	// upstream goroutines that send on the client's behalf, lastUp the
	// read loop's copy.
	variant protocols.UpstreamVariant
	upCodec atomic.Value
	lastUp  protocols.Codec
	parts   []protocols.Message // the current split request's; read loop only
	fan     fanouts
	// pinned is the client's own upstream connection while its session
	// keeps it (a transaction). Read loop only.
	pinned *pinnedConn
	// peer is the client as authorization policies see it; identified
	// once its certificate was read (identity.go). Read loop only.
	peer       authz.Peer
	identified bool
}

// newDownstream serves nc, accepted by l, with the protocol its first
// byte chose (accepted).
func newDownstream(l *listener, nc net.Conn, as protocol) *downstream {
	s, cfg := l.srv, l.cfg.Load()
	affinity := s.clients.Add(1)
	nc = s.loopFor(nc, as.codec, affinity, l.asksRateLimitService(cfg)).Enroll(nc) // iomode.go
	d := &downstream{srv: s, lis: l, cfg: cfg, codec: as.codec, codecName: as.name, nc: nc, w: wire.NewWriter(nc, 0),
		affinity: affinity, active: s.metrics.Active.WithLabelValues(as.name), peer: peerOf(nc)}
	lim := s.limits.Load()
	d.readDone = make(chan struct{})
	var dec wire.Decoder = d.codec
	d.encode = d.codec.Encode
	if cc, ok := d.codec.(protocols.ConnCodec); ok {
		d.conn = cc.NewConnDecoder(true)
		dec = d.conn
		if ce, ok := d.conn.(protocols.ConnEncoder); ok {
			d.encode, d.sender, d.released = ce.Encode, ce, ce.Released
		}
		d.relayer, _ = d.conn.(protocols.Relayer)
	}
	if d.conn != nil {
		d.endRead = d.endOwed
	}
	if pr, ok := d.conn.(protocols.Promoter); ok {
		d.endRead = func() { d.promote(pr) }
	}
	d.rd = wire.NewReader(nc, dec, wire.ReadOptions{
		FrameTimeout: lim.FrameTimeout, IdleTimeout: lim.IdleTimeout, Budget: lim.budget,
		Busy: func() bool { return d.inflight.Load() > 0 }, Reject: d.reject, Batch: &d.batch,
	})
	if pw, ok := d.conn.(protocols.PromoteWaiter); ok && d.rd.CanWake() {
		pw.WaitToPromote(promoteGrace) // relay_request.go
		d.waiter = pw
	}
	if d.codec.Model() == protocols.Pipelined {
		d.order = &replyOrder{}
	}
	if sc, ok := d.codec.(protocols.SessionCodec); ok {
		d.session = sc.NewSession()
		d.variant, _ = d.session.(protocols.UpstreamVariant)
	}
	d.splitter, _ = d.codec.(protocols.Splitter)
	return d
}

// errQuit ends the read loop of a client whose session closed it (its
// reply is queued; the replies still in flight are awaited).
var errQuit = errors.New("the client asked to close the connection")

func (d *downstream) serve() {
	gauge := d.srv.metrics.DownstreamCx.WithLabelValues(d.cfg.StatPrefix)
	gauge.Inc()
	d.srv.metrics.DownstreamCxT.WithLabelValues(d.cfg.StatPrefix).Inc()
	defer d.lis.open.Add(-1)
	defer gauge.Dec()
	defer d.srv.untrack(d)
	defer func() {
		if d.pinned != nil {
			d.pinned.conn.Leave() // the client is gone: nothing it sent is awaited any more
		}
	}()

	err := d.rd.Run(d.handle, d.endRead)
	close(d.readDone)
	var de *wire.DecodeError
	switch {
	case errors.As(err, &de):
		d.srv.metrics.DecodeErrors.WithLabelValues(d.codecName, "downstream").Inc()
		d.srv.log.Warn("closing client connection on a frame that cannot be decoded",
			zap.String("listener", d.cfg.Name), zap.Stringer("client", d.nc.RemoteAddr()), zap.Bool("answered", d.rejected), zap.Error(err))
		if !d.rejected {
			d.w.CloseWithError(err)
			return
		}
		// The reply saying why goes out before the close.
	case errors.Is(err, io.EOF), errors.Is(err, errQuit), errors.Is(err, wire.ErrDrained):
		// The client half-closed (or quit, or the drain read all it had
		// sent): it may still read the replies to what it sent, so wait
		// for them (bounded) before closing. Its relayed streams end
		// now: no credit for them can come any more (relay.go).
		d.resetRelays()
		d.awaitInflight(halfCloseWait)
	case errors.Is(err, wire.ErrIdleTimeout), errors.Is(err, wire.ErrFrameTimeout), errors.Is(err, wire.ErrBufferLimit):
		reason := boundReason(err)
		d.srv.metrics.DownstreamCxClosed.WithLabelValues(d.cfg.StatPrefix, reason).Inc()
		d.srv.log.Debug("closing client connection", zap.String("listener", d.cfg.Name),
			zap.Stringer("client", d.nc.RemoteAddr()), zap.String("reason", reason))
		d.w.CloseWithError(err)
		d.releaseDeparted()
		return
	case handshakeFailed(d.nc):
		d.srv.metrics.DownstreamCxClosed.WithLabelValues(d.cfg.StatPrefix, "tls_handshake").Inc()
		d.srv.log.Warn("closing client connection: TLS handshake failed", zap.String("listener", d.cfg.Name),
			zap.Stringer("client", d.nc.RemoteAddr()), zap.Error(err))
	case errors.Is(err, net.ErrClosed):
	default:
		d.srv.log.Debug("client connection ended", zap.String("listener", d.cfg.Name), zap.Error(err))
	}
	d.releaseDeparted()
	d.w.Close()
}

// handshakeFailed reports whether nc is a TLS connection whose handshake
// did not complete.
func handshakeFailed(nc net.Conn) bool {
	tc, ok := nc.(*tls.Conn)
	return ok && !tc.ConnectionState().HandshakeComplete
}

// boundReason is the metric label of a read loop bound error.
func boundReason(err error) string {
	switch {
	case errors.Is(err, wire.ErrIdleTimeout):
		return "idle_timeout"
	case errors.Is(err, wire.ErrFrameTimeout):
		return "frame_timeout"
	}
	return "buffer_limit"
}

// reject queues the codec's answer to a frame it cannot decode (one over
// the size limit), if it has one.
func (d *downstream) reject(buf []byte, err error) {
	r, ok := d.codec.(protocols.Rejecter)
	if !ok {
		return
	}
	if reply := r.RejectReply(nil, buf, err); len(reply) > 0 {
		d.rejected = d.w.Queue(func(dst []byte) []byte { return append(dst, reply...) }) == nil
	}
}

// halfCloseWait bounds how long a half-closed client's replies are awaited.
const halfCloseWait = 30 * time.Second

func (d *downstream) awaitInflight(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for d.inflight.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-d.w.Done():
			return // the write side failed: nobody to answer
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stopReading begins the connection's drain: the codec's drain frame
// (Dubbo's readonly event) tells the client to send elsewhere, and the
// read loop reads on for grace, then stops once it has read what the
// client had sent and the frame it is in; it then waits for the replies
// in flight, as for a client that half-closed.
func (d *downstream) stopReading(grace time.Duration) {
	if dr, ok := d.codec.(protocols.Drainer); ok {
		_ = d.w.Append(dr.DrainFrame)
	}
	d.rd.Drain(grace)
}

// close closes the connection through its writer, which shuts it down
// first: closing the socket directly would wait for the handler its read
// loop may be running (proxy/wire's Reader.Run).
func (d *downstream) close() { d.w.Close() }

func (d *downstream) handle(m *protocols.Message) error {
	if d.conn != nil {
		d.payOwed()
		if d.relayer != nil {
			d.passCredits()
		}
	}
	var seq uint64
	if d.order != nil && (m.Kind == protocols.KindRequest || m.Kind == protocols.KindHeartbeat) {
		seq = d.order.reserve()
	}
	switch m.Kind {
	case protocols.KindHeartbeat:
		d.reply(seq, &d.batch, func(dst []byte) []byte { return d.codec.HeartbeatReply(dst, m) })
	case protocols.KindRequest, protocols.KindOneway:
		if d.pinned != nil && d.pinned.stream != nil && d.pinned.stream.ended.Load() {
			d.endStream()
		}
		pin := protocols.Forward
		if d.session != nil {
			out, v := d.session.Intercept(d.local[:0], m)
			d.local = out
			if d.variant != nil {
				d.noteUpstream()
			}
			switch v {
			case protocols.Pin, protocols.Unpin, protocols.Once, protocols.Stream:
				pin = v
			case protocols.Forward:
			default:
				d.sessionReply(m, seq, out)
				if v == protocols.Abandon && d.pinned != nil {
					d.pinned.conn.Release()
					d.pinned = nil
				}
				if v == protocols.Close {
					return errQuit
				}
				return nil
			}
		}
		switch {
		case d.pinned != nil && d.pinned.stream != nil:
			if !d.deniedPinned(m, seq, pin) {
				d.sendStream(m, seq)
			}
			return nil
		case d.pinned != nil:
			if !d.deniedPinned(m, seq, pin) {
				d.sendPinned(m, seq, pin)
			}
			return nil
		case pin == protocols.Stream:
			// What the stream relays is written as it comes: the replies
			// to the client's earlier requests go first.
			d.awaitInflight(halfCloseWait)
		}
		// A request that pins goes whole to the one connection it pins.
		if d.splitter != nil && pin == protocols.Forward && m.Kind == protocols.KindRequest && d.split(d.splitter, m, seq) {
			return nil
		}
		r := request{d: d, m: m, seq: seq, pin: pin}
		d.route(&r)
	case protocols.KindPart:
		d.relayRequestPart(m) // relay_request.go
	case protocols.KindControl:
		// The connection's own frame, consumed by its decoder.
	default:
		// Responses and heartbeat replies from a client answer nothing
		// the proxy sent it: drop them.
		d.srv.log.Debug("dropping a non-request frame from a client", zap.Stringer("kind", m.Kind))
	}
	return nil
}

// payOwed writes what the connection's decoder owes the client (HTTP/2
// acknowledgements and flow-control credit: protocols.ConnDecoder).
func (d *downstream) payOwed() {
	d.owed = d.conn.Owed(d.owed[:0])
	if len(d.owed) > 0 {
		// Sent with the next reply (within wire.AckDelay), not in a
		// write of their own, which would cost the client a read
		// (docs/benchmarks.md, Triple, 2026-12-07); at once if the read
		// ends with no reply on its way (owedSoon).
		_ = d.w.QueueSoon(d.appendOwed, wire.AckDelay)
		d.owedSoon = true
	}
	if d.sender != nil && d.sender.HasReleased() {
		// Taken under the writer's lock, as responses are encoded: none
		// overtakes the frames of its stream released before it.
		d.batch.Add(d.w)
		_ = d.w.Queue(d.released)
	}
}

func (d *downstream) appendOwed(dst []byte) []byte { return append(dst, d.owed...) }

// endOwed ends a read that queued owed frames: with no reply in flight
// they go out with this read's flush. Read loop only.
func (d *downstream) endOwed() {
	if d.owedSoon {
		d.owedSoon = false
		if d.inflight.Load() == 0 {
			d.batch.Add(d.w)
		}
	}
}

func (d *downstream) begin(c *upstream.Call) {
	d.inflight.Add(1)
	c.Host.Begin()
	d.active.Inc()
}

func (d *downstream) end(c *upstream.Call) {
	d.active.Dec()
	c.Host.End()
	if c.Cluster != nil {
		c.Cluster.Load.End()
	}
	d.inflight.Add(-1)
}

// Respond delivers an upstream response with the client's request ID
// (after following a Redis Cluster's MOVED or ASK: redirect).
func (d *downstream) Respond(c *upstream.Call, resp *protocols.Message, b *wire.Batch) {
	if c.Cluster != nil && c.Cluster.Redis != nil && d.redirect(c, resp, b, 0) {
		return
	}
	d.respond(c, resp, b)
}

func (d *downstream) respond(c *upstream.Call, resp *protocols.Message, b *wire.Batch) {
	if resp.More {
		d.relayPart(c, nil, c.Req.ID, c.Seq, c.ResponseSet, resp, b)
		return
	}
	status := "ok"
	if resp.Kind == protocols.KindError {
		status = "error"
	}
	d.report(c.Cluster, c.Host, protocols.Classify(d.codec, resp) == protocols.ClassOK)
	if c.Cluster != nil && c.Cluster.Redis != nil {
		family := "write"
		if ro, _ := c.Req.Headers.Get("readonly"); ro == "true" {
			family = "read"
		}
		d.srv.metrics.RedisCluster.NodeDuration.WithLabelValues(c.ClusterName, c.Host.Addr, family).Observe(time.Since(c.Start).Seconds())
	}
	var encErr error
	d.reply(c.Seq, b, func(dst []byte) []byte {
		out, err := d.encode(dst, resp, c.Req.ID, c.ResponseSet)
		if err != nil {
			encErr = err
			return d.codec.ErrorReply(dst, &c.Req, protocols.ReasonNoHealthyUpstream, "metamesh: bad upstream response: "+err.Error())
		}
		return out
	})
	if encErr != nil {
		d.srv.log.Warn("could not re-encode an upstream response", zap.String("cluster", c.ClusterName), zap.Error(encErr))
	}
	d.account(&c.Req, callObservers(c), c.Service, c.Route, c.ClusterName, c.Host.Addr, status, len(resp.Raw))
	d.settle(c)
}

// Fail answers a request whose upstream will never respond.
func (d *downstream) Fail(c *upstream.Call, reason protocols.Reason, err error, b *wire.Batch) {
	if status := departure(err); status != "" {
		d.clientLeft(c, status)
		return
	}
	if upstream.Resend(c, err, b) {
		return // its server went away before processing it: it went elsewhere
	}
	if errors.Is(err, upstream.ErrReset) || errors.Is(err, upstream.ErrTimeout) {
		d.report(c.Cluster, c.Host, false) // as a route timeout counts, on the exchange path
	}
	d.reply(c.Seq, b, func(dst []byte) []byte {
		return d.errorReply(dst, &c.Req, reason, fmt.Sprintf("metamesh: route %s: cluster %s: %v", c.Route, c.ClusterName, err))
	})
	d.srv.metrics.LocalReplies.WithLabelValues(d.codecName, reason.String()).Inc()
	d.account(&c.Req, callObservers(c), c.Service, c.Route, c.ClusterName, c.Host.Addr, reason.String(), 0)
	d.settle(c)
}

// errorReply appends the codec's error reply to req for reason. On a
// connection whose client's flow control the proxy follows
// (protocols.ConnEncoder: HTTP/2) it goes through that too, after what is
// held of its stream, and the codec may end a stream relayed in parts
// its own way (Triple: as trailers, or a reset when a message would be
// cut short: docs/triple-streams.md).
func (d *downstream) errorReply(dst []byte, req *protocols.Message, reason protocols.Reason, text string) []byte {
	return d.ownReply(dst, req.ID, func(dst []byte) []byte { return d.codec.ErrorReply(dst, req, reason, text) })
}

// ownReply appends a reply the proxy makes itself (build appends it) to
// request id, through the client's connection encoder when it has one,
// as errorReply does.
func (d *downstream) ownReply(dst []byte, id uint64, build func([]byte) []byte) []byte {
	if d.sender == nil {
		return build(dst)
	}
	reply := protocols.Message{Kind: protocols.KindError, Raw: build(nil)}
	out, err := d.encode(dst, &reply, id, nil)
	if err != nil {
		return append(dst, reply.Raw...)
	}
	return out
}

// callObservers are the sampling decisions a call carries for its request.
func callObservers(c *upstream.Call) observers {
	return observers{log: c.Log, span: c.Span, start: c.Start}
}

// settle ends an answered call's load accounting and releases it.
func (d *downstream) settle(c *upstream.Call) {
	if c.Streaming() {
		d.relays.drop(c.Req.ID, c)
	}
	d.end(c)
	c.Release()
}

// reply queues one reply to the client: at once, or for pipelined
// protocols in its request's order (seq).
func (d *downstream) reply(seq uint64, b *wire.Batch, encode func([]byte) []byte) {
	if seq&partBit != 0 {
		d.fan.complete(seq, b, encode)
		return
	}
	if d.order != nil {
		d.order.complete(seq, d.w, b, encode)
		return
	}
	b.Add(d.w)
	_ = d.w.Queue(encode)
}

// sessionReply answers m with out, the reply its connection's session
// made, and accounts for it as a request of its service (no route, no
// cluster) with status "session".
func (d *downstream) sessionReply(m *protocols.Message, seq uint64, out []byte) {
	cfg := d.lis.cfg.Load()
	service, ok := m.Headers.Get(router.ServiceKey)
	if !ok {
		service = cfg.DefaultService
	}
	ob, _ := d.observe(cfg, m, service)
	if m.Kind == protocols.KindRequest {
		d.reply(seq, &d.batch, func(dst []byte) []byte { return append(dst, out...) })
	}
	d.srv.metrics.LocalReplies.WithLabelValues(d.codecName, "session").Inc()
	d.account(m, ob, serviceLabel(d.srv.snap.Load().Routes[cfg.RouteConfig], service), "", "", "", "session", 0)
}

// serviceLabel is the service label of a request to service under table:
// the service itself only when a virtual host names it, so clients can't
// mint series.
func serviceLabel(table *router.Table, service string) string {
	if table == nil || !table.Has(service) {
		return "*"
	}
	return service
}

// report records one try's outcome for outlier detection, logging and
// counting an ejection.
func (d *downstream) report(cl *cluster.Cluster, h *cluster.Host, ok bool) {
	if cl.Report(h, ok) {
		d.srv.metrics.Ejections.WithLabelValues(cl.Name).Inc()
		d.srv.log.Warn("upstream host ejected", zap.String("cluster", cl.Name), zap.String("host", h.Addr),
			zap.Time("until", h.EjectedUntil(time.Now())), zap.Int32("ejections", h.Ejections()))
	}
}

// access logs one request (req: its frame and attributes), begun at
// start, on l.
func (d *downstream) access(l *accesslog.Logger, req *protocols.Message, service, route, cluster, upstream, status string, start time.Time, respBytes int) {
	method, ok := req.Headers.Get("method")
	if !ok {
		// Redis names its commands, not methods.
		method, _ = req.Headers.Get("command")
	}
	l.Log(accesslog.Entry{
		Time: start, Listener: d.cfg.Name, Protocol: d.codecName, Service: service, Method: method,
		Route: route, Cluster: cluster, Upstream: upstream, Status: status, Duration: time.Since(start),
		ReqBytes: len(req.Raw), RespBytes: respBytes, RequestID: req.ID, Client: d.nc.RemoteAddr().String(),
	})
}

var _ upstream.Receiver = (*downstream)(nil)
