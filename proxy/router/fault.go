package router

import (
	"math/rand/v2"
	"time"
)

// Fault injects faults into a route's requests.
type Fault struct {
	// Delay holds DelayPercent of the requests before they are routed.
	Delay        time.Duration
	DelayPercent uint32
	// Abort answers AbortPercent of the requests with the codec's error
	// of status AbortStatus (0: its "no healthy upstream" error).
	AbortStatus  uint32
	AbortPercent uint32
}

// Sample rolls for one request: whether it is delayed, and whether it is
// aborted.
func (f *Fault) Sample() (delay, abort bool) {
	return hit(f.DelayPercent), hit(f.AbortPercent)
}

func hit(pct uint32) bool { return pct >= 100 || (pct > 0 && rand.Uint32N(100) < pct) }
