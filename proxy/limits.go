package proxy

import (
	"syscall"
	"time"

	"github.com/metamesh/metamesh/proxy/wire"
)

// Limits bound what client connections can hold of the proxy. Each
// listener applies them to its own connections; the buffer cap is shared
// by all. Zero values mean no bound.
type Limits struct {
	// MaxConnections is the most client connections one listener keeps
	// open; one more is accepted and closed at once (counted in
	// metamesh_downstream_cx_overflow_total).
	MaxConnections int
	// MaxTotalConnections is the most client connections all listeners
	// together keep open, so clients can't take the file descriptors the
	// proxy needs for its upstreams (one more is closed at once, counted
	// as the listener's overflow).
	MaxTotalConnections int
	// IdleTimeout closes a client connection that sends nothing for that
	// long while none of its requests is in flight.
	IdleTimeout time.Duration
	// FrameTimeout closes a client connection that takes longer than that
	// to send one frame, counted from the frame's first byte.
	FrameTimeout time.Duration
	// MaxBufferedBytes caps the bytes held across all client connections
	// in read buffers grown for frames larger than 16 KiB while they
	// arrive; the connection whose frame would pass it is closed.
	MaxBufferedBytes int64
}

// The defaults. The idle timeout is Envoy's (tcp_proxy and HTTP
// connection manager: 1 hour). Envoy has no frame timeout by default; 30
// seconds lets a maximal 8 MiB Dubbo frame arrive at 300 KB/s while a
// peer that sends a frame byte by byte is gone within the same time. The
// buffer cap holds 16 frames at Dubbo's 8 MiB limit. Like Envoy's
// listeners, a listener takes any number of connections unless told.
const (
	DefaultIdleTimeout      = time.Hour
	DefaultFrameTimeout     = 30 * time.Second
	DefaultMaxBufferedBytes = 128 << 20
)

// DefaultLimits returns the limits a proxy starts with.
func DefaultLimits() Limits {
	return Limits{IdleTimeout: DefaultIdleTimeout, FrameTimeout: DefaultFrameTimeout, MaxBufferedBytes: DefaultMaxBufferedBytes,
		MaxTotalConnections: DefaultMaxTotalConnections()}
}

// DefaultMaxTotalConnections is 90% of the process's open-file limit (Go
// raises the soft limit to the hard one at start): the rest is kept for
// upstream connections, listeners and files, so a flood of clients gets
// its excess closed instead of making accept fail for everyone. Envoy
// asks operators for the same bound (overload manager,
// global_downstream_max_connections) and warns when it is missing.
func DefaultMaxTotalConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 0
	}
	return int(min(rl.Cur, 1<<30) * 9 / 10)
}

// limits is what a Server applies: Limits with the shared buffer budget.
type limits struct {
	Limits
	budget *wire.Budget
}

// SetLimits replaces the limits for connections accepted from now on.
func (s *Server) SetLimits(l Limits) {
	s.limits.Store(&limits{Limits: l, budget: wire.NewBudget(l.MaxBufferedBytes)})
}
