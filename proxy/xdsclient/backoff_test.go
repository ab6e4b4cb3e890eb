package xdsclient

import (
	"testing"
	"time"
)

// Waits double from Initial up to Max, each jittered within [d/2, d].
func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		want *= time.Millisecond
		seen := map[time.Duration]bool{}
		for range 50 {
			d := b.delay(n)
			if d < want/2 || d > want {
				t.Fatalf("delay(%d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("delay(%d) has no jitter", n)
		}
	}
}
