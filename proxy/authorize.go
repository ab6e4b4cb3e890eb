package proxy

import (
	"fmt"
	"net"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/authz"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/router"
)

// authorize applies the listener's authorization policies to r
// (docs/authorization.md): a DENY policy that matches, or ALLOW policies
// of r's service none of which matches, end r with the codec's denial
// naming the policy. Dry-run and AUDIT policies only log and count. A
// listener without policies costs one nil check.
func (r *request) authorize() *local {
	return r.d.authorize(r.cfg, r.table, r.vh, r.service, r.m)
}

// authorize checks m, a request naming service on a listener with cfg,
// served by vh of table, and returns the denial that ends it, or nil. A
// request no virtual host serves is left to its no-route reply.
func (d *downstream) authorize(cfg *config.Listener, table *router.Table, vh *router.VirtualHost, service string, m *protocols.Message) *local {
	az := cfg.Authz
	if az == nil || vh == nil {
		return nil
	}
	if !d.identified {
		d.identify()
	}
	// The policies of the service whose routes serve the request: on a
	// port of one service, a request naming another one (a Dubbo
	// interface, a multiplexed Thrift name) is still that service's.
	target := service
	if !table.Has(service) {
		target = vh.Service
	}
	dec := az.Check(target, service, &m.Headers, &d.peer)
	series := d.srv.metrics.Authz
	if p := dec.Audited; p != nil {
		series.Audited.WithLabelValues(p.Name).Inc()
	}
	if p := dec.DryRunDenied; p != nil {
		series.DryRunDenied.WithLabelValues(p.Name).Inc()
		method, _ := m.Headers.Get("method")
		d.srv.log.Info("authorization dry run: request would be denied", zap.String("policy", p.Name),
			zap.String("listener", cfg.Name), zap.String("service", service), zap.String("method", method),
			zap.Stringer("client", d.nc.RemoteAddr()), zap.String("why", denial(p, service)))
	}
	p := dec.Denied
	if p == nil {
		return nil
	}
	series.Denied.WithLabelValues(p.Name).Inc()
	return &local{reason: protocols.ReasonDenied, text: "metamesh: " + denial(p, service)}
}

// denial says why p refuses a request to service.
func denial(p *authz.Policy, service string) string {
	if p.Action == authz.Deny {
		return fmt.Sprintf("denied by authorization policy %s (service %s)", p.Name, service)
	}
	return fmt.Sprintf("denied: no rule of authorization policy %s allows this request (service %s)", p.Name, service)
}

// deniedPinned applies the listener's authorization policies to m, a
// request for the client's own upstream connection (a transaction),
// which takes no route: it answers a denied one and reports true. The
// request that ends the transaction (Unpin) is not checked: it must reach
// the connection to release it.
func (d *downstream) deniedPinned(m *protocols.Message, seq uint64, pin protocols.Verdict) bool {
	cfg := d.lis.cfg.Load()
	if cfg.Authz == nil || pin == protocols.Unpin {
		return false
	}
	service, ok := m.Headers.Get(router.ServiceKey)
	if !ok {
		service = cfg.DefaultService
	}
	table := d.srv.snap.Load().Routes[cfg.RouteConfig]
	var vh *router.VirtualHost
	if table != nil {
		vh = table.Lookup(service)
	}
	out := d.authorize(cfg, table, vh, service, m)
	if out == nil {
		return false
	}
	r := request{d: d, m: m, seq: seq, pin: pin, cfg: cfg, service: service, routeName: "pinned",
		label: serviceLabel(table, service)}
	r.ob, r.traceSet = d.observe(cfg, m, service)
	r.answer(out)
	return true
}

// peerOf is what the proxy knows of the client at the end of nc before
// it reads from it: its address (for a captured connection, the original
// client's). Its principal and namespace come from its certificate, if
// any (identify).
func peerOf(nc net.Conn) authz.Peer {
	var p authz.Peer
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		p.Addr = ta.AddrPort().Addr().Unmap()
	}
	return p
}
