package interop

import (
	"context"
	"net"
	"strings"
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
//
// A call "begins" when its caller takes the time, but reaches the proxy
// only when the dubbo-go client writes it: under load that can be after
// the drain has closed the connection, and the client then fails it
// without writing it (getty's ErrSessionClosed). Such a call never
// reached the proxy, so the proxy cannot have lost it: it counts as
// refused after the drain. Any other failure of a call begun before the
// drain (its connection closed with it unanswered) is a lost call.
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
				case at != 0 && neverSent(err):
					failedAfter.Add(1)
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

// neverSent reports whether err is the dubbo-go client's refusal to write
// a call on a connection already closed (getty's ErrSessionClosed, matched
// by its text: getty is not a direct dependency).
func neverSent(err error) bool {
	return strings.Contains(err.Error(), "session Already Closed")
}
