package proxy

import (
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/router"
	"github.com/metamesh/metamesh/proxy/upstream"
)

// pinnedConn is a client's own upstream connection, kept while its
// session says so (a transaction).
type pinnedConn struct {
	conn *upstream.Dedicated
	cl   *cluster.Cluster
	host *cluster.Host
	// stream is set when the connection is a stream (stream.go).
	stream *stream
}

// pinAndSend opens a connection of the client's own to c's host, sends
// the session's preamble and c on it, and keeps it (Pin) or lets it close
// once c is answered (Once), or makes it a stream (Stream, stream.go). Timeouts and retries don't apply to requests
// on a client's own connection.
func (d *downstream) pinAndSend(c *upstream.Call, cl *cluster.Cluster, pin protocols.Verdict) error {
	conn, err := d.pool(cl, c.Host).Dedicated()
	if err != nil {
		return err
	}
	c.Dedicated = true
	if pa, ok := d.session.(protocols.Preambler); ok {
		for _, m := range pa.Preamble() {
			pc := upstream.NewCall(&m)
			pc.Receiver = mirrorSink{} // the session answered it already
			if err := conn.Send(pc, &d.batch); err != nil {
				pc.Release()
				conn.Release()
				return err
			}
		}
	}
	if pin == protocols.Stream {
		err = d.startStream(conn, c, cl)
		if err != nil {
			conn.Release()
		}
		return err
	}
	if err := conn.Send(c, &d.batch); err != nil {
		conn.Release()
		return err
	}
	if pin == protocols.Once {
		conn.Release()
		return nil
	}
	d.pinned = &pinnedConn{conn: conn, cl: cl, host: c.Host}
	return nil
}

// sendPinned sends m (reply slot seq) on the client's own connection,
// whatever its attributes; with Unpin, the connection closes once m is
// answered.
func (d *downstream) sendPinned(m *protocols.Message, seq uint64, pin protocols.Verdict) {
	p := d.pinned
	cfg := d.lis.cfg.Load()
	service, ok := m.Headers.Get(router.ServiceKey)
	if !ok {
		service = cfg.DefaultService
	}
	r := request{d: d, m: m, seq: seq, pin: pin, cfg: cfg, service: service, routeName: "pinned", cname: p.cl.Name,
		label: serviceLabel(d.srv.snap.Load().Routes[cfg.RouteConfig], service)}
	// Sampled on its own: the request that pinned the connection made its
	// own decisions, and its span may be over already.
	r.ob, r.traceSet = d.observe(cfg, m, service)
	if !p.cl.Load.Begin(p.cl.Limits) {
		// As any request to the cluster: its outcome ends the slot.
		r.answer(fail(protocols.ReasonOverloaded, "metamesh: cluster %s has %d requests in flight, its limit", p.cl.Name, p.cl.Limits.MaxRequests))
		return
	}
	c := upstream.NewCall(m)
	c.Host, c.Receiver, c.Cluster, c.Log, c.Span, c.Set = p.host, d, p.cl, r.ob.log, r.ob.span, r.traceSet
	c.Service, c.Route, c.ClusterName, c.Start, c.Seq = r.label, r.routeName, p.cl.Name, r.ob.start, seq
	c.Dedicated = true
	d.begin(c)
	err := p.conn.Send(c, &d.batch)
	if err != nil || pin == protocols.Unpin {
		p.conn.Release()
		d.pinned = nil
	}
	if err != nil {
		d.end(c)
		c.Release()
		r.answer(fail(protocols.ReasonNoHealthyUpstream, "metamesh: the connection of this client's transaction to %s closed: %v", p.host.Addr, err))
	}
}
