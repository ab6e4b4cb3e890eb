package interop

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// TestDubboDrainUnderLoad: dubbo-go callers keep calling through the
// proxy while it shuts down. Every call begun before the drain began gets
// its reply; after the drain, the listener refuses connections and
// Shutdown returns without running out of time.
func TestDubboDrainUnderLoad(t *testing.T) {
	const callers, maxCalls = 8, 5000 // maxCalls per caller: the loop ends by itself
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 50, W2: 50}
	srv := startProxy(t, r)

	var drainAt atomic.Int64 // unix nanoseconds; 0 before the drain
	var ok, lostBefore, failedAfter atomic.Int64
	var wg sync.WaitGroup
	for g := range callers {
		c := newClient(t, r.Listen, dubboclient.Options{Timeout: 5 * time.Second})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range maxCalls {
				began := time.Now().UnixNano()
				if at := drainAt.Load(); at != 0 && began > at+int64(time.Second) {
					return // well after the drain: nothing left to learn
				}
				_, err := c.SayHello(context.Background(), payload(g, i))
				switch at := drainAt.Load(); {
				case err == nil:
					ok.Add(1)
				case at == 0 || began < at:
					lostBefore.Add(1)
					t.Errorf("caller %d call %d, begun before the drain: %v", g, i, err)
				default:
					failedAfter.Add(1)
				}
			}
		}()
	}
	waitFor(t, 30*time.Second, "calls under way", func() bool { return ok.Load() >= 500 })
	drainAt.Store(time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	wg.Wait()
	if err != nil {
		t.Fatalf("Shutdown under load: %v", err)
	}
	if lostBefore.Load() != 0 {
		t.Fatalf("%d calls begun before the drain failed", lostBefore.Load())
	}
	if nc, err := net.DialTimeout("tcp", r.Listen, time.Second); err == nil {
		_ = nc.Close()
		t.Fatalf("the proxy still accepts connections after the drain")
	}
	t.Logf("%d calls answered, %d refused after the drain began", ok.Load(), failedAfter.Load())
}
