package proxy

import (
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/proxy/config"
)

// listener accepts client connections on one address. Its config may be
// replaced in place (a new codec or route config) without rebinding; each
// connection keeps the config it was accepted with for its codec.
type listener struct {
	srv  *Server
	ln   net.Listener
	addr string
	cfg  atomic.Pointer[config.Listener]
	done chan struct{}
	open atomic.Int64 // client connections open
	// refused counts the connections closed by the limit since the last
	// log line about them; refusedLog is when that line was written.
	refused    int
	refusedLog time.Time
}

func newListener(s *Server, ln net.Listener, cfg *config.Listener) *listener {
	l := &listener{srv: s, ln: ln, addr: cfg.Address, done: make(chan struct{})}
	l.cfg.Store(cfg)
	return l
}

func (l *listener) serve() {
	defer close(l.done)
	where := func() zap.Field { return zap.String("listener", l.cfg.Load().Name) }
	l.srv.acceptLoop(l.ln, where, func(nc net.Conn) {
		if why, limit, over := l.srv.overLimit("listener", l.open.Load()); over {
			l.refuse(nc, why, limit)
			return
		}
		// Counted from now, so connections still in their handshake or
		// sending nothing count against the listener's limit.
		l.open.Add(1)
		go l.start(nc)
	})
}

// start serves one accepted connection, after its TLS, if any (secure),
// so a slow handshake holds only its own goroutine, with the codec its
// first byte chose (accepted).
func (l *listener) start(nc net.Conn) {
	cfg := l.cfg.Load()
	first, peeked, ok := l.srv.sniff(nc, cfg, true)
	if ok {
		nc, ok = l.srv.secure(nc, cfg, first, peeked)
	}
	if !ok {
		l.open.Add(-1)
		return
	}
	d := newDownstream(l, nc, accepted(cfg, first, peeked))
	if !l.srv.track(d) {
		l.open.Add(-1)
		d.close()
		return
	}
	d.serve() // its end counts the connection closed
}

// refuse closes a connection over a connection limit. It logs the first
// refusal, then at most one line a second with the number refused since.
func (l *listener) refuse(nc net.Conn, why string, limit int) {
	cfg := l.cfg.Load()
	name := cfg.Name
	// Counted before the close, which the client sees.
	l.srv.metrics.DownstreamCxOverflow.WithLabelValues(cfg.StatPrefix).Inc()
	_ = nc.Close()
	l.refused++
	if now := time.Now(); now.Sub(l.refusedLog) >= time.Second {
		l.srv.log.Warn(why, zap.String("listener", name), zap.Int("limit", limit), zap.Int("refused", l.refused))
		l.refused, l.refusedLog = 0, now
	}
}

func (l *listener) close() {
	_ = l.ln.Close()
	<-l.done
}
