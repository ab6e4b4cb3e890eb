package proxy

import (
	"net"
	"net/netip"
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

func serveOutbound(c *captureListener, nc *net.TCPConn, dst netip.AddrPort) {
	s := c.srv
	if snap := s.snap.Load(); snap != nil {
		if cfg := snap.Capture.Lookup(dst); cfg != nil {
			s.metrics.Capture.Outbound.WithLabelValues("served").Inc()
			c.serveCodec(nc, cfg)
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
