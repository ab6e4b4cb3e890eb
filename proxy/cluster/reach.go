package cluster

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Reconnect backoff after a failed connection attempt, as gRPC's
// connection backoff with a shorter start and cap: a mesh proxy should
// notice a restarted server within seconds, not minutes.
const (
	ReconnectBase       = 200 * time.Millisecond
	ReconnectMax        = 10 * time.Second
	reconnectMultiplier = 1.6
	reconnectJitter     = 0.2
)

// reach is a host's connectivity: down from the moment a connection
// attempt to it fails until a reconnect in the background succeeds.
// While down, Pick skips the host when another one can be picked, with or
// without outlier detection, so one dead endpoint costs the requests in
// flight when it died, not every other request.
type reach struct {
	down atomic.Bool

	mu      sync.Mutex
	probing bool // a reconnect loop runs
	retired bool // no snapshot has the host any more: stop probing
}

// Unreachable reports whether h's last connection attempt failed and no
// reconnect has succeeded since.
func (h *Host) Unreachable() bool { return h.reach.down.Load() }

// ConnectFailed marks h unreachable and, unless one runs already, starts
// a reconnect loop in the background: dial is called with exponential
// backoff (ReconnectBase ×1.6 up to ReconnectMax, ±20% jitter) until it
// returns nil, which makes h reachable again, or until h is retired. A
// dial error that is final (stop true: the host's pool is gone) ends the
// loop and makes h pickable again, so a host is never left out on stale
// news. ConnectFailed reports whether h was reachable until now.
func (h *Host) ConnectFailed(dial func() (stop bool, err error)) bool {
	was := !h.reach.down.Swap(true)
	r := &h.reach
	r.mu.Lock()
	start := !r.probing && !r.retired
	if start {
		r.probing = true
	}
	r.mu.Unlock()
	if start {
		go h.reconnect(dial)
	}
	return was
}

// Connected marks h reachable: a request reached it after all (through a
// connection that another attempt opened meanwhile).
func (h *Host) Connected() {
	if h.reach.down.Load() {
		h.reach.down.Store(false)
	}
}

// Retire stops h's reconnect loop: no config in force has h any more.
func (h *Host) Retire() {
	h.reach.mu.Lock()
	h.reach.retired = true
	h.reach.mu.Unlock()
}

func (h *Host) reconnect(dial func() (bool, error)) {
	r := &h.reach
	delay := ReconnectBase
	for {
		time.Sleep(jitter(delay))
		r.mu.Lock()
		retired := r.retired
		r.mu.Unlock()
		stop, err := true, error(nil)
		if !retired && r.down.Load() {
			stop, err = dial()
		}
		if err == nil || stop {
			r.mu.Lock()
			r.down.Store(false)
			r.probing = false
			r.mu.Unlock()
			return
		}
		delay = min(time.Duration(float64(delay)*reconnectMultiplier), ReconnectMax)
	}
}

func jitter(d time.Duration) time.Duration {
	f := 1 + reconnectJitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}
