package proxy

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/proxy/capture"
	"github.com/metamesh/metamesh/proxy/config"
)

// captureListener accepts connections that NAT REDIRECT rules (`metamesh
// iptables`) sent to the proxy, and hands each, with its original
// destination, to handle (outbound or inbound).
type captureListener struct {
	srv    *Server
	ln     net.Listener
	kind   string // "outbound" or "inbound", for logs
	handle func(c *captureListener, nc *net.TCPConn, dst netip.AddrPort)
	done   chan struct{}
	open   atomic.Int64 // connections open, served or relayed

	mu     sync.Mutex
	relays map[net.Conn]struct{} // relayed connections' client sides, closed at Shutdown
	closed bool
}

// passthroughDialTimeout bounds the dial of a relayed connection's
// destination; the client sees its connection closed when it runs out.
const passthroughDialTimeout = 10 * time.Second

// addCapture starts serving ln. It fails once Shutdown has begun.
func (s *Server) addCapture(ln net.Listener, kind string, handle func(*captureListener, *net.TCPConn, netip.AddrPort)) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.stopped {
		return errors.New("proxy: shutting down")
	}
	c := &captureListener{srv: s, ln: ln, kind: kind, handle: handle, done: make(chan struct{}), relays: map[net.Conn]struct{}{}}
	s.captures = append(s.captures, c)
	go c.serve()
	return nil
}

func (c *captureListener) serve() {
	defer close(c.done)
	c.srv.acceptLoop(c.ln, func() zap.Field { return zap.String("capture", c.kind) }, func(nc net.Conn) {
		tc, ok := nc.(*net.TCPConn)
		if !ok {
			_ = nc.Close()
			return
		}
		if why, _, over := c.srv.overLimit("capture port", c.open.Load()); over {
			c.refuse(tc, why)
			return
		}
		dst, err := capture.OriginalDst(tc)
		if err != nil {
			c.refuse(tc, err.Error())
			return
		}
		// A connection no rule redirected (dialed to the capture port
		// itself) has the capture port as its original destination:
		// relaying it would dial the proxy again, for ever.
		if local := tc.LocalAddr().(*net.TCPAddr).AddrPort(); unmap(local) == unmap(dst) {
			c.refuse(tc, "connection to the capture port that no capture rule redirected: closing it")
			return
		}
		c.open.Add(1)
		go func() {
			defer c.open.Add(-1)
			c.handle(c, tc, unmap(dst))
		}()
	})
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

func (c *captureListener) refuse(nc *net.TCPConn, why string) {
	if c.kind == "outbound" {
		c.srv.metrics.Capture.Outbound.WithLabelValues("refused").Inc()
	} else {
		c.srv.metrics.Capture.InboundCx.WithLabelValues("tcp", "refused").Inc()
	}
	c.srv.log.Debug(why, zap.String("capture", c.kind), zap.Stringer("client", nc.RemoteAddr()))
	_ = nc.Close()
}

// serveCodec serves nc with cfg's routes and the protocol its first byte
// chose (accepted), as if it had been accepted by cfg's listener. The
// connection has a listener of its own, so it keeps the config it was
// accepted with (a bound listener's connections
// follow in-place updates; a captured one's are looked up again only when
// the client reconnects).
func (c *captureListener) serveCodec(nc net.Conn, cfg *config.Listener, as protocol) {
	l := &listener{srv: c.srv, addr: cfg.Address}
	l.cfg.Store(cfg)
	d := newDownstream(l, nc, as)
	if !c.srv.track(d) {
		d.close()
		return
	}
	l.open.Add(1)
	d.serve()
}

// relay dials dst and copies bytes both ways between nc and it, until
// both sides are done. dialed says whether dst answered (nc is closed at
// once when it did not).
func (c *captureListener) relay(nc *net.TCPConn, dst netip.AddrPort, dialed func(ok bool), up, down func(int64)) {
	if !c.track(nc) {
		return
	}
	defer c.untrack(nc)
	d := net.Dialer{Timeout: passthroughDialTimeout}
	uc, err := d.Dial("tcp", dst.String())
	if err != nil {
		c.srv.log.Debug("capture: destination unreachable", zap.String("capture", c.kind), zap.Stringer("destination", dst), zap.Error(err))
		_ = nc.Close()
		dialed(false)
		return
	}
	dialed(true)
	capture.Relay(nc, uc, up, down)
}

func (c *captureListener) track(nc net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = nc.Close()
		return false
	}
	c.relays[nc] = struct{}{}
	return true
}

func (c *captureListener) untrack(nc net.Conn) {
	c.mu.Lock()
	delete(c.relays, nc)
	c.mu.Unlock()
}

// stop stops accepting.
func (c *captureListener) stop() {
	_ = c.ln.Close()
	<-c.done
}

// closeRelays closes the relayed connections (their bytes carry no
// requests the proxy could let finish).
func (c *captureListener) closeRelays() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for nc := range c.relays {
		_ = nc.Close()
	}
}
