package proxy

import (
	"errors"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/proxy/snapshot"
)

// listener accepts client connections on one address. Its config may be
// replaced in place (a new codec or route config) without rebinding; each
// connection keeps the config it was accepted with for its codec.
type listener struct {
	srv  *Server
	ln   net.Listener
	addr string
	cfg  atomic.Pointer[snapshot.Listener]
	done chan struct{}
}

func newListener(s *Server, ln net.Listener, cfg *snapshot.Listener) *listener {
	l := &listener{srv: s, ln: ln, addr: cfg.Address, done: make(chan struct{})}
	l.cfg.Store(cfg)
	return l
}

func (l *listener) serve() {
	defer close(l.done)
	var backoff time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, don't spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.srv.log.Warn("accept failed", zap.String("listener", l.cfg.Load().Name), zap.Error(err))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		d := newDownstream(l, nc)
		if !l.srv.track(d) {
			d.close()
			continue
		}
		go d.serve()
	}
}

func (l *listener) close() {
	_ = l.ln.Close()
	<-l.done
}
