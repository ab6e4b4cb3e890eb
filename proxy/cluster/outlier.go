package cluster

import (
	"sync/atomic"
	"time"
)

// Outlier configures the ejection of hosts that keep failing: after
// ConsecutiveErrors failures in a row (connect failures, resets, server
// error replies), a host is skipped by the load balancer for
// BaseEjectionTime × the number of times it has been ejected (capped at
// MaxEjectionTime), as long as no more than MaxEjectionPercent of the
// cluster's hosts are ejected at once (at least one may always be). The
// ejection count decays by one for every Interval a host stays in.
type Outlier struct {
	ConsecutiveErrors  int32
	Interval           time.Duration
	BaseEjectionTime   time.Duration
	MaxEjectionTime    time.Duration
	MaxEjectionPercent int
}

// Outlier defaults, as Envoy's.
const (
	DefaultConsecutiveErrors  = 5
	DefaultOutlierInterval    = 10 * time.Second
	DefaultBaseEjectionTime   = 30 * time.Second
	DefaultMaxEjectionTime    = 300 * time.Second
	DefaultMaxEjectionPercent = 10
)

// WithDefaults fills o's zero fields.
func (o Outlier) WithDefaults() Outlier {
	if o.ConsecutiveErrors <= 0 {
		o.ConsecutiveErrors = DefaultConsecutiveErrors
	}
	if o.Interval <= 0 {
		o.Interval = DefaultOutlierInterval
	}
	if o.BaseEjectionTime <= 0 {
		o.BaseEjectionTime = DefaultBaseEjectionTime
	}
	if o.MaxEjectionTime <= 0 {
		o.MaxEjectionTime = max(DefaultMaxEjectionTime, o.BaseEjectionTime)
	}
	if o.MaxEjectionPercent <= 0 {
		o.MaxEjectionPercent = DefaultMaxEjectionPercent
	}
	return o
}

// health is a host's outlier state; it lives on the Host, so it outlasts
// config swaps.
type health struct {
	errors       atomic.Int32 // consecutive failures
	ejectedUntil atomic.Int64 // unix nanoseconds; 0 when never ejected
	ejections    atomic.Int32 // times ejected, decayed by Interval
}

// EjectedUntil returns when h's current ejection ends (zero time if h is
// not ejected at now).
func (h *Host) EjectedUntil(now time.Time) time.Time {
	u := h.health.ejectedUntil.Load()
	if u == 0 || now.UnixNano() >= u {
		return time.Time{}
	}
	return time.Unix(0, u)
}

// Ejections returns how many times h has been ejected (after decay).
func (h *Host) Ejections() int32 { return h.health.ejections.Load() }

// Report records the outcome of one try to h: ok false for a connect
// failure, a reset or a server error reply. It reports whether h was
// ejected by this failure.
func (c *Cluster) Report(h *Host, ok bool) bool {
	if c == nil || c.Outlier == nil || h == nil {
		return false
	}
	if ok {
		h.health.errors.Store(0)
		return false
	}
	if h.health.errors.Add(1) < c.Outlier.ConsecutiveErrors {
		return false
	}
	now := time.Now()
	if !h.EjectedUntil(now).IsZero() || !c.mayEject(now) {
		return false
	}
	h.health.errors.Store(0)
	o := c.Outlier
	n := h.health.ejections.Load()
	if last := h.health.ejectedUntil.Load(); last != 0 {
		// One ejection forgiven per interval spent back in.
		n = max(0, n-int32(now.Sub(time.Unix(0, last))/o.Interval))
	}
	n++
	h.health.ejections.Store(n)
	d := min(o.BaseEjectionTime*time.Duration(n), o.MaxEjectionTime)
	h.health.ejectedUntil.Store(now.Add(d).UnixNano())
	return true
}

// mayEject reports whether one more host may be ejected.
func (c *Cluster) mayEject(now time.Time) bool {
	ejected := 0
	for _, e := range c.Endpoints {
		if !e.Host.EjectedUntil(now).IsZero() {
			ejected++
		}
	}
	limit := max(1, len(c.Endpoints)*c.Outlier.MaxEjectionPercent/100)
	return ejected < limit
}
