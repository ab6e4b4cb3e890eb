package proxy

import (
	"fmt"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/router"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// A client's stream (protocols.Stream: Redis pub/sub): its own upstream
// connection, whose every frame is relayed to the client as it comes,
// whether it answers a request or not. The client's requests go on it
// with no reply awaited; their replies are among the frames, in order.

// stream is the Pusher of a client's streaming connection.
type stream struct {
	d     *downstream
	watch protocols.StreamWatch // upstream read loop only
	// ended is set once a frame relayed said the stream is over; the
	// client's read loop then lets the connection go.
	ended atomic.Bool
}

// Push relays resp to the client. The end of the stream is noted first:
// a request the client sends once it has read the frame finds it.
func (s *stream) Push(resp *protocols.Message, b *wire.Batch) {
	s.ended.Store(s.watch.Ended(resp))
	b.Add(s.d.w)
	_ = s.d.w.Queue(func(dst []byte) []byte { return append(dst, resp.Raw...) })
}

// Closed closes the client's connection: its subscriptions are gone
// with the upstream's, and a client that reconnects subscribes again.
func (s *stream) Closed(cause error) {
	s.d.srv.log.Debug("closing a client whose stream's upstream connection closed", zap.String("listener", s.d.cfg.Name), zap.Error(cause))
	s.d.w.CloseWithError(cause)
}

// startStream makes conn, the client's own connection to c's host with
// the session's preamble sent, a stream, and sends c on it. c's reply
// slot is filled with nothing: its replies come on the stream. On error
// the caller still owns c.
func (d *downstream) startStream(conn *upstream.Dedicated, c *upstream.Call, cl *cluster.Cluster) error {
	sw, ok := d.codec.(protocols.Streamer)
	if !ok {
		return fmt.Errorf("metamesh: codec %s has no streams", d.codecName)
	}
	s := &stream{d: d, watch: sw.NewStreamWatch()}
	conn.Stream(s)
	sc := upstream.NewCall(&c.Req)
	sc.Req.Kind, sc.Host = protocols.KindOneway, c.Host
	if err := conn.Send(sc, &d.batch); err != nil {
		sc.Release()
		return err
	}
	d.pinned = &pinnedConn{conn: conn, cl: cl, host: c.Host, stream: s}
	d.reply(c.Seq, &d.batch, func(dst []byte) []byte { return dst })
	d.account(&c.Req, callObservers(c), c.Service, c.Route, c.ClusterName, c.Host.Addr, "oneway", 0)
	d.settle(c)
	return nil
}

// sendStream sends m (reply slot seq, filled with nothing) on the
// client's stream.
func (d *downstream) sendStream(m *protocols.Message, seq uint64) {
	p := d.pinned
	cfg := d.lis.cfg.Load()
	service, ok := m.Headers.Get(router.ServiceKey)
	if !ok {
		service = cfg.DefaultService
	}
	label := serviceLabel(d.srv.snap.Load().Routes[cfg.RouteConfig], service)
	ob, _ := d.observe(cfg, m, service)
	c := upstream.NewCall(m)
	c.Req.Kind, c.Host = protocols.KindOneway, p.host
	if err := p.conn.Send(c, &d.batch); err != nil {
		c.Release()
		d.reply(seq, &d.batch, func(dst []byte) []byte {
			return d.codec.ErrorReply(dst, m, protocols.ReasonNoHealthyUpstream, fmt.Sprintf("metamesh: the subscribed connection to %s closed: %v", p.host.Addr, err))
		})
		d.account(m, ob, label, "pinned", p.cl.Name, p.host.Addr, protocols.ReasonNoHealthyUpstream.String(), 0)
		return
	}
	d.reply(seq, &d.batch, func(dst []byte) []byte { return dst })
	d.account(m, ob, label, "pinned", p.cl.Name, p.host.Addr, "oneway", 0)
}

// endStream lets go of the client's stream once it ended, and tells the
// session. Read loop only.
func (d *downstream) endStream() {
	d.pinned.conn.Release()
	d.pinned = nil
	if ss, ok := d.session.(protocols.StreamSession); ok {
		ss.StreamEnded()
	}
}
