package proxy

import (
	"errors"
	"time"

	"github.com/metamesh/metamesh/proxy/upstream"
)

// SetDefaultTimeout sets how long a request may wait for its upstream's
// reply when its route sets no timeout (0: forever; upstream.DefaultTimeout
// unless set). Such a request then gets the codec's timeout reply.
func (s *Server) SetDefaultTimeout(d time.Duration) { s.pools.SetDefaultTimeout(d) }

// statusClientGone is the metric and access log status of a request whose
// client went away before its reply came.
const statusClientGone = "client_gone"

// releaseDeparted ends at once the requests of a client that went away
// while they waited on multiplexed upstream connections or on its own
// (which closes): nothing is held for a reply nobody will read. Requests
// on shared connections that can't skip a reply end at their timeout.
// Its relayed streams are cancelled first, as if it had reset each
// (relay.go): Withdraw leaves a call whose part is being delivered, which
// a stream's call nearly always is.
func (d *downstream) releaseDeparted() {
	d.resetRelays()
	if d.inflight.Load() == 0 {
		return
	}
	for _, c := range d.srv.pools.Withdraw(d.owns) {
		d.clientLeft(c, statusClientGone)
	}
}

// clientLeft ends c, a call of this client taken back because the client
// went away or reset the call's stream (status): Withdraw returned it, or
// it left during a delivery (Fail with upstream.ErrClientGone or
// ErrStreamCancelled).
func (d *downstream) clientLeft(c *upstream.Call, status string) {
	if ex, ok := c.Receiver.(*exchange); ok {
		ex.clientLeft(c, status)
		return
	}
	d.account(&c.Req, callObservers(c), c.Service, c.Route, c.ClusterName, c.Host.Addr, status, 0)
	d.settle(c)
}

// departure is the status of a call that left during a delivery because
// of err (upstream.Receiver's Fail), or "" for any other failure.
func departure(err error) string {
	switch {
	case errors.Is(err, upstream.ErrClientGone):
		return statusClientGone
	case errors.Is(err, upstream.ErrStreamCancelled):
		return statusCancelled
	}
	return ""
}

// owns reports whether c is a request of this client.
func (d *downstream) owns(c *upstream.Call) bool {
	switch r := c.Receiver.(type) {
	case *downstream:
		return r == d
	case *exchange:
		return r.d == d
	}
	return false
}

// clientLeft ends the exchange whose try c was taken back because its
// client went away or reset the stream (status).
func (ex *exchange) clientLeft(c *upstream.Call, status string) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	current := !ex.done && c == ex.try
	if current {
		ex.unrelayLocked(c) // a delivery may have relayed it again
		ex.endTryLocked()
	}
	c.Host.End()
	c.Release()
	if current {
		ex.finishLocked(status, 0)
	}
}

// SelfTimed reports whether the exchange has a timeout (its route's or
// the request's own), so the default timeout leaves its tries alone
// (upstream.SelfTimed).
func (ex *exchange) SelfTimed() bool { return ex.timeout > 0 }

var _ upstream.SelfTimed = (*exchange)(nil)
