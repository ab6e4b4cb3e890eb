package main

import (
	"os"
	"testing"
	"time"
)

// TestCtxSwitchesCountsWaits: a process that waits switches context each
// time it does; the counter read from /proc sees those switches.
func TestCtxSwitchesCountsWaits(t *testing.T) {
	before, err := ctxSwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	const waits = 50
	for range waits {
		time.Sleep(time.Millisecond) // nothing else to run: the thread blocks
	}
	after, err := ctxSwitches(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < waits/2 {
		t.Errorf("%d context switches counted over %d sleeps, want at least %d", after-before, waits, waits/2)
	}
}
