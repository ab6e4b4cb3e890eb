package cluster

import "sync/atomic"

// Load counts the requests and retries in flight to one cluster. Like a
// Host, the same Load is reused by every snapshot that keeps the cluster's
// name, so limits hold across config swaps.
type Load struct {
	active  atomic.Int64
	retries atomic.Int64
}

// Limits bound a cluster's load (circuit breaking). Zero fields have the
// defaults documented on each.
type Limits struct {
	// MaxRequests is the most requests in flight to the cluster, waiting
	// for their replies; 0 means no limit. Over it a request gets the
	// overloaded reply at once: nothing is queued.
	MaxRequests int64
	// RetryBudgetPercent is the share of the requests in flight that may
	// be retries at once (default 20, as Envoy's retry budget).
	RetryBudgetPercent float64
	// MinRetryConcurrency is the retries allowed at once whatever the
	// budget says (default 3), so a quiet cluster can still retry.
	MinRetryConcurrency int64
}

// Default retry budget.
const (
	DefaultRetryBudgetPercent  = 20
	DefaultMinRetryConcurrency = 3
)

// Begin admits one request under limits, or reports false when the
// cluster is at MaxRequests; End must follow every admitted request. A nil
// Load admits everything.
func (l *Load) Begin(limits Limits) bool {
	if l == nil {
		return true
	}
	n := l.active.Add(1)
	if limits.MaxRequests > 0 && n > limits.MaxRequests {
		l.active.Add(-1)
		return false
	}
	return true
}

// End marks the end of a request admitted by Begin.
func (l *Load) End() {
	if l != nil {
		l.active.Add(-1)
	}
}

// Active returns the requests in flight.
func (l *Load) Active() int64 { return l.active.Load() }

// BeginRetry admits one retry within the retry budget, or reports false;
// EndRetry must follow every admitted retry once it is answered.
func (l *Load) BeginRetry(limits Limits) bool {
	if l == nil {
		return true
	}
	pct, floor := limits.RetryBudgetPercent, limits.MinRetryConcurrency
	if pct <= 0 {
		pct = DefaultRetryBudgetPercent
	}
	if floor <= 0 {
		floor = DefaultMinRetryConcurrency
	}
	allowed := max(int64(float64(l.active.Load())*pct/100), floor)
	if l.retries.Add(1) > allowed {
		l.retries.Add(-1)
		return false
	}
	return true
}

// EndRetry marks the end of a retry admitted by BeginRetry.
func (l *Load) EndRetry() {
	if l != nil {
		l.retries.Add(-1)
	}
}
