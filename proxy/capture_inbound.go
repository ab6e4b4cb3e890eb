package proxy

import (
	"net"
	"net/netip"
)

// loopback4 is where inbound connections are forwarded: the application
// on its own port. The dial leaves through lo, which the capture rules
// leave alone whatever the user.
var loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// CaptureInbound serves ln as the inbound capture port (mesh mode): each
// connection is forwarded to the local application at 127.0.0.1 on its
// original port, counted by the protocol of that port (the codec of the
// listener whose capture destinations hold the original destination, the
// pod's own address; "tcp" for a port no listener knows). Shutdown stops it.
//
// This accept path is where mutual TLS between proxies will terminate:
// the client side of the relay becomes the TLS server connection, and the
// peer's identity is known before the first byte reaches the application.
func (s *Server) CaptureInbound(ln net.Listener) error {
	return s.addCapture(ln, "inbound", serveInbound)
}

func serveInbound(c *captureListener, nc *net.TCPConn, dst netip.AddrPort) {
	s := c.srv
	protocol := "tcp"
	if snap := s.snap.Load(); snap != nil {
		if cfg := snap.Capture.Lookup(dst); cfg != nil {
			protocol = cfg.CodecName
		}
	}
	m := s.metrics.Capture
	up, down := m.InboundBytes.WithLabelValues(protocol, "upstream"), m.InboundBytes.WithLabelValues(protocol, "downstream")
	c.relay(nc, netip.AddrPortFrom(loopback4, dst.Port()), func(ok bool) {
		if ok {
			m.InboundCx.WithLabelValues(protocol, "ok").Inc()
		} else {
			m.InboundCx.WithLabelValues(protocol, "dial_error").Inc()
		}
	}, func(n int64) { up.Add(float64(n)) }, func(n int64) { down.Add(float64(n)) })
}
