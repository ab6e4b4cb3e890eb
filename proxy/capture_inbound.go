package proxy

import (
	"net"
	"net/netip"
)

// loopback4 is where inbound connections are forwarded: the application
// on its own port. The dial leaves through lo, which the capture rules
// leave alone whatever the user.
var loopback4 = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// CaptureInbound serves ln as the inbound capture port (mesh mode). A
// connection to one of the addresses of a service on a meta-protocol port
// (the pod's own address is one of its service's endpoints) is served by
// that port's codec, as the inbound listener inbound|PORT|<listener>:
// each request takes the request path of any other (its route is the
// inbound table's one, its cluster inbound|PORT||, the application at
// 127.0.0.1:PORT) and is counted, logged and traced as such. Any other
// connection is forwarded as bytes to 127.0.0.1 on its original port,
// counted by the protocol of that port ("tcp" for a port no listener
// knows). Shutdown stops it.
//
// Mutual TLS between proxies terminates here, as the listener's mode says
// (secure): the caller's identity is known before its first request is
// decoded, and the codec reads plaintext.
func (s *Server) CaptureInbound(ln net.Listener) error {
	s.applyMu.Lock()
	s.builder.Inbound = true
	s.applyMu.Unlock()
	if err := s.addCapture(ln, "inbound", serveInbound); err != nil {
		return err
	}
	if snap := s.snap.Load(); snap != nil {
		// A config already in force was built without the inbound
		// listeners: build it again.
		return s.Apply(snap.Resources)
	}
	return nil
}

func serveInbound(c *captureListener, nc *net.TCPConn, dst netip.AddrPort) {
	s := c.srv
	m := s.metrics.Capture
	protocol := "tcp"
	if snap := s.snap.Load(); snap != nil {
		if cfg := snap.Inbound(dst); cfg != nil {
			first, peeked, ok := s.sniff(nc, cfg, true)
			as := accepted(cfg, first, peeked)
			var sc net.Conn
			if ok {
				sc, ok = s.secure(nc, cfg, first, peeked)
			}
			if !ok {
				m.InboundCx.WithLabelValues(as.name, "refused").Inc()
				return
			}
			m.InboundCx.WithLabelValues(as.name, "served").Inc()
			c.serveCodec(sc, cfg, as)
			return
		}
		if cfg := snap.Capture.Lookup(dst); cfg != nil {
			protocol = cfg.CodecName
		}
	}
	up, down := m.InboundBytes.WithLabelValues(protocol, "upstream"), m.InboundBytes.WithLabelValues(protocol, "downstream")
	c.relay(nc, netip.AddrPortFrom(loopback4, dst.Port()), func(ok bool) {
		if ok {
			m.InboundCx.WithLabelValues(protocol, "forwarded").Inc()
		} else {
			m.InboundCx.WithLabelValues(protocol, "dial_error").Inc()
		}
	}, func(n int64) { up.Add(float64(n)) }, func(n int64) { down.Add(float64(n)) })
}
