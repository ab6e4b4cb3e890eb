package proxy

import (
	"fmt"
	"net"
	"runtime"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// IOMode is how the proxy reads its connections (docs/proxy-config.md,
// "I/O mode").
type IOMode string

const (
	// IOGoroutine reads each connection in a goroutine of its own (the
	// default outside Linux, and a Server's until SetIOMode).
	IOGoroutine IOMode = "goroutine"
	// IOEpoll reads the plaintext connections of every codec but those
	// with connection state (Triple), client and upstream alike, on event
	// loops, half of GOMAXPROCS unless told (Linux only, where it is the
	// default: proxy/wire's Loop; upstream.OnLoop).
	IOEpoll IOMode = "epoll"
)

// DefaultIOMode is the mode of `metamesh run` and `metamesh proxy` when
// --io-mode is not given: epoll on Linux, goroutine elsewhere.
func DefaultIOMode() IOMode {
	if runtime.GOOS == "linux" {
		return IOEpoll
	}
	return IOGoroutine
}

// SetIOMode chooses how connections accepted and dialed from now on are
// read, and in the epoll mode on which event loops (o.Count of them,
// wire's DefaultLoopCount when 0, half of GOMAXPROCS; the process's loops
// made as o says, shared by its Servers). Call it before the first Apply.
func (s *Server) SetIOMode(m IOMode, o wire.LoopOptions) error {
	var ls *wire.Loops
	switch m {
	case IOGoroutine, "":
	case IOEpoll:
		var err error
		if ls, err = wire.SharedLoops(o); err != nil {
			return err
		}
	default:
		return fmt.Errorf("proxy: unknown I/O mode %q (goroutine or epoll)", m)
	}
	s.loops.Store(ls)
	s.pools.SetLoops(ls)
	return nil
}

// loopFor returns the event loop of a client connection nc served with
// codec, or nil for a goroutine of its own: in goroutine mode, for TLS
// and Triple, and when its listener's routes may ask a rate-limit service
// (asks), as a request waiting on one costs less in a goroutine than
// handed off a loop (docs/proxy-config.md, "I/O mode"). A client's loop
// follows its affinity, as its upstream connection's follows its slot
// (proxy/upstream's loopFor), so both share a loop when a cluster's
// max_connections is a multiple of the loops.
func (s *Server) loopFor(nc net.Conn, codec protocols.Codec, affinity uint64, asks bool) *wire.Loop {
	ls := s.loops.Load()
	if _, plain := nc.(*net.TCPConn); !plain || ls == nil || asks || !upstream.OnLoop(codec) {
		return nil
	}
	return ls.Pick(affinity)
}

// asksRateLimitService reports whether the routes of l's config cfg, as
// in force now, may ask a rate-limit service.
func (l *listener) asksRateLimitService(cfg *config.Listener) bool {
	snap := l.srv.snap.Load()
	return snap != nil && snap.Routes[cfg.RouteConfig].AsksRateLimitService()
}
