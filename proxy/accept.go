package proxy

import (
	"errors"
	"net"
	"time"

	"go.uber.org/zap"
)

// acceptLoop accepts connections on ln until it is closed, handing each
// to handle. An accept error (out of file descriptors and the like) backs
// off from 5 ms to 1 s instead of spinning; where names the loop in its
// log line.
func (s *Server) acceptLoop(ln net.Listener, where func() zap.Field, handle func(net.Conn)) {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", where(), zap.Error(err))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		handle(nc)
	}
}

// overLimit reports the connection limit one more connection would pass:
// that of its own listener (self names it, open counts its connections)
// or the proxy's total; over is false when it passes neither.
func (s *Server) overLimit(self string, open int64) (why string, limit int, over bool) {
	lim := s.limits.Load()
	if limit := lim.MaxConnections; limit > 0 && open >= int64(limit) {
		return self + " at its connection limit: closing new connections", limit, true
	}
	if limit := lim.MaxTotalConnections; limit > 0 && s.open.Load() >= int64(limit) {
		return "proxy at its total connection limit: closing new connections", limit, true
	}
	return "", 0, false
}
