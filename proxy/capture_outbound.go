package proxy

import (
	"net"
	"net/netip"

	"github.com/metamesh/metamesh/proxy/config"
)

// CaptureOutbound serves ln as the outbound capture port (mesh mode): each
// connection's original destination is looked up in the capture table of
// the config in force (config.CaptureTable). A destination a listener
// serves (a service address or endpoint on a meta-protocol port) gets that
// listener's codec, routes and policies, as if the client had connected to
// the listener; any other is relayed untouched as TCP (passthrough),
// as is everything before the first config. Shutdown stops it.
//
// The proxy's own connections (upstream and passthrough dials) are never
// captured again: the capture rules exempt its UID.
func (s *Server) CaptureOutbound(ln net.Listener) error {
	return s.addCapture(ln, "outbound", serveOutbound)
}

// outbound is cfg as an outbound captured connection is served: its
// caller is the sidecar's own workload, whose identity the destination's
// inbound side learns from mutual TLS, so the policies asking for one are
// left to it (config.Listener.OutboundAuthz).
func outbound(cfg *config.Listener) *config.Listener {
	if cfg.Authz == cfg.OutboundAuthz {
		return cfg
	}
	o := *cfg
	o.Authz = cfg.OutboundAuthz
	return &o
}

func serveOutbound(c *captureListener, nc *net.TCPConn, dst netip.AddrPort) {
	s := c.srv
	if snap := s.snap.Load(); snap != nil {
		if cfg := snap.Capture.Lookup(dst); cfg != nil {
			s.metrics.Capture.Outbound.WithLabelValues("served").Inc()
			first, peeked, ok := s.sniff(nc, cfg, false)
			if !ok {
				return
			}
			o := outbound(cfg)
			c.serveCodec(nc, o, accepted(o, first, peeked))
			return
		}
	}
	m := s.metrics.Capture
	m.Outbound.WithLabelValues("passthrough").Inc()
	up, down := m.PassthroughBytes.WithLabelValues("upstream"), m.PassthroughBytes.WithLabelValues("downstream")
	c.relay(nc, dst, func(ok bool) {
		if ok {
			m.PassthroughCx.WithLabelValues("ok").Inc()
		} else {
			m.PassthroughCx.WithLabelValues("dial_error").Inc()
		}
	}, func(n int64) { up.Add(float64(n)) }, func(n int64) { down.Add(float64(n)) })
}
