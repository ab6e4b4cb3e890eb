package harness

import (
	"net"
	"sync"
	"testing"
)

// StartResetter listens on addr and closes every connection it accepts at
// once: a peer that is up but resets every request, as a crashing server
// behind a live port does. Connection attempts succeed, so outlier
// detection (not reachability) is what moves traffic away from it. stop
// closes it and waits for its accept loop; it also runs at cleanup.
func StartResetter(t testing.TB, addr string) (stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("harness: StartResetter %s: %v", addr, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { _ = ln.Close(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}
