package xdsclient

import (
	"math/rand/v2"
	"time"
)

// Backoff is the wait between connection attempts: Initial after the
// first failure, doubling up to Max, each wait drawn uniformly from
// [d/2, d) so that proxies cut off together don't reconnect together.
type Backoff struct {
	Initial, Max time.Duration
}

// DefaultBackoff is used when Config.Backoff is zero.
var DefaultBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 10 * time.Second}

// delay is the wait before attempt n (0 = after the first failure).
func (b Backoff) delay(n int) time.Duration {
	d := b.Initial
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}
