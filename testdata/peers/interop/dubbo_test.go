package interop

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/capture"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

func TestRoutingThroughProxy(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 80, W2: 20}
	startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{})
	ctx := context.Background()

	t.Run("echo", func(t *testing.T) {
		got, err := c.SayHello(ctx, "alice")
		if err != nil || (got != "v1|alice" && got != "v2|alice") {
			t.Fatalf("SayHello = %q, %v", got, err)
		}
	})
	t.Run("batchjob isolated on v2", func(t *testing.T) {
		bctx := dubboclient.WithAttachments(ctx, map[string]string{"batchjob": "true"})
		for i := range 200 {
			got, err := c.SayHello(bctx, payload(0, i))
			if err != nil || got != "v2|"+payload(0, i) {
				t.Fatalf("call %d = %q, %v; want v2", i, got, err)
			}
		}
	})
	t.Run("mutated attachment reaches the server", func(t *testing.T) {
		got, err := c.Attachment(ctx, "x-routed-by")
		if err != nil || !strings.HasSuffix(got, "|metamesh") {
			t.Fatalf("Attachment(x-routed-by) = %q, %v; want the value set by the route", got, err)
		}
	})
	t.Run("80/20 split", func(t *testing.T) {
		const calls = 2000
		var v1n, v2n atomic.Int64
		parallel(t, 16, calls/16, func(g, i int) {
			got, err := c.SayHello(ctx, payload(g, i))
			if err != nil || !strings.HasSuffix(got, "|"+payload(g, i)) {
				t.Errorf("caller %d call %d = %q, %v", g, i, got, err)
				return
			}
			switch versionOf(got) {
			case "v1":
				v1n.Add(1)
			case "v2":
				v2n.Add(1)
			}
		})
		share := float64(v1n.Load()) / float64(v1n.Load()+v2n.Load()) * 100
		t.Logf("v1 %d, v2 %d: v1 share %.1f%%", v1n.Load(), v2n.Load(), share)
		if share < 75 || share > 85 {
			t.Fatalf("v1 share %.1f%%, want 80 ± 5", share)
		}
	})
}

// parallel runs fn(g, i) for g in [0,goroutines) and i in [0,calls).
func parallel(t testing.TB, goroutines, calls int, fn func(g, i int)) {
	t.Helper()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				fn(g, i)
			}
		}()
	}
	wg.Wait()
}

// Every reply must reach the caller that sent it: each caller sends its
// own payloads over the proxy's shared upstream connections.
func TestConcurrentCallersGetTheirOwnReplies(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 50, W2: 50}
	startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{})
	var wrong, failed atomic.Int64
	parallel(t, 64, 500, func(g, i int) {
		got, err := c.SayHello(context.Background(), payload(g, i))
		switch {
		case err != nil:
			if failed.Add(1) <= 5 {
				t.Errorf("caller %d call %d: %v", g, i, err)
			}
		case !strings.HasSuffix(got, "|"+payload(g, i)):
			if wrong.Add(1) <= 5 {
				t.Errorf("caller %d call %d got another caller's reply %q", g, i, got)
			}
		}
	})
	if wrong.Load()+failed.Load() > 0 {
		t.Fatalf("%d wrong replies, %d failed calls out of 32000", wrong.Load(), failed.Load())
	}
}

// Killing one upstream mid-run fails only the calls routed to it, with the
// proxy's error naming the cluster; no call hangs or gets another's reply.
func TestUpstreamKilledMidRun(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 50, W2: 50}
	srv := startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{Timeout: 5 * time.Second})

	var done, ok, proxyErrs, wrong, other atomic.Int64
	var killOnce sync.Once
	parallel(t, 64, 500, func(g, i int) {
		if done.Add(1) == 16000 {
			killOnce.Do(v2.Kill)
		}
		got, err := c.SayHello(context.Background(), payload(g, i))
		switch {
		case err == nil && strings.HasSuffix(got, "|"+payload(g, i)):
			ok.Add(1)
		case err == nil:
			if wrong.Add(1) <= 5 {
				t.Errorf("caller %d call %d got another caller's reply %q", g, i, got)
			}
		case strings.Contains(err.Error(), "metamesh: route canary: cluster outbound|20880|v2|"):
			proxyErrs.Add(1)
		default:
			if other.Add(1) <= 5 {
				t.Errorf("caller %d call %d: unexpected error (timeout=%v): %v", g, i, dubboclient.IsTimeout(err), err)
			}
		}
	})
	t.Logf("ok %d, SERVER_ERROR from the proxy %d, wrong %d, other errors %d", ok.Load(), proxyErrs.Load(), wrong.Load(), other.Load())
	if wrong.Load() > 0 || other.Load() > 0 {
		t.Fatal("calls got another caller's reply or an error other than the proxy's")
	}
	if proxyErrs.Load() == 0 {
		t.Fatal("no call was routed to the killed upstream after the kill: the test proved nothing")
	}
	if ok.Load() < 16000 {
		t.Fatalf("only %d calls succeeded; v1 and the calls before the kill should", ok.Load())
	}
	if n := closedClientConns(srv); n != 0 {
		t.Fatalf("%v client connections closed by an upstream's death", n)
	}
}

func TestLocalRepliesReachDubboGo(t *testing.T) {
	v1 := harness.StartGreeter(t, "v1")
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: harness.FreeAddr(t), W1: 100}
	startProxy(t, r)
	ctx := context.Background()

	t.Run("unknown service", func(t *testing.T) {
		c, err := dubboclient.New(r.Listen, "com.example.Missing")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.SayHello(ctx, "x")
		if err == nil || !strings.Contains(err.Error(), `no route for service "com.example.Missing"`) {
			t.Fatalf("err = %v, want the proxy's no-route error naming the service", err)
		}
	})
	t.Run("no upstream", func(t *testing.T) {
		c := newClient(t, r.Listen, dubboclient.Options{})
		_, err := c.SayHello(dubboclient.WithAttachments(ctx, map[string]string{"batchjob": "true"}), "x")
		if err == nil || !strings.Contains(err.Error(), "cluster outbound|20880|v2|") || !strings.Contains(err.Error(), "connect") {
			t.Fatalf("err = %v, want the proxy's connect failure naming cluster v2", err)
		}
		if got, err := c.SayHello(ctx, "y"); err != nil || got != "v1|y" {
			t.Fatalf("the connection did not survive the error reply: %q, %v", got, err)
		}
	})
}

// The client's heartbeats are answered by the proxy and never reach a
// provider.
func TestHeartbeatAnsweredByProxy(t *testing.T) {
	v1 := harness.StartGreeter(t, "v1")
	up, err := capture.NewRelay(v1.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	r := routes{Listen: harness.FreeAddr(t), V1: up.Addr(), V2: up.Addr(), W1: 100}
	startProxy(t, r)
	down, err := capture.NewRelay(r.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()

	c := newClient(t, down.Addr(), dubboclient.Options{HeartbeatPeriod: time.Second, Connections: 1})
	if _, err := c.SayHello(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	isHeartbeat := func(f capture.Frame) bool { return f.Dir == capture.ToProvider && f.IsEvent() && f.IsRequest() }
	hb, err := down.WaitFor(0, 20*time.Second, isHeartbeat)
	if err != nil {
		t.Fatalf("the client sent no heartbeat: %v", err)
	}
	reply, err := down.WaitFor(hb.Seq, 5*time.Second, func(f capture.Frame) bool {
		return f.Dir == capture.ToConsumer && f.IsEvent() && !f.IsRequest() && f.ID() == hb.ID()
	})
	if err != nil {
		t.Fatalf("the proxy did not answer heartbeat %d: %v", hb.ID(), err)
	}
	if reply.Status() != capture.StatusOK {
		t.Fatalf("heartbeat reply status %d, want 20", reply.Status())
	}
	for _, f := range up.Frames() {
		if isHeartbeat(f) {
			t.Fatalf("a heartbeat reached the provider: %s", f.Describe())
		}
	}
}

// Replacing the route table 50 times under load fails no call and closes
// no client connection.
func TestConfigSwapUnderLoad(t *testing.T) {
	v1, v2 := greeters(t)
	r := routes{Listen: harness.FreeAddr(t), V1: v1.Addr, V2: v2.Addr, W1: 80, W2: 20}
	srv := startProxy(t, r)
	c := newClient(t, r.Listen, dubboclient.Options{})

	var stop atomic.Bool
	var calls, failed, wrong atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				got, err := c.SayHello(context.Background(), payload(g, i))
				calls.Add(1)
				if err != nil {
					if failed.Add(1) <= 5 {
						t.Errorf("caller %d call %d: %v", g, i, err)
					}
				} else if !strings.HasSuffix(got, "|"+payload(g, i)) {
					wrong.Add(1)
				}
			}
		}()
	}
	for i := range 50 {
		time.Sleep(20 * time.Millisecond)
		next := r
		next.W1, next.W2 = 20, 80
		next.Mutation = "swap"
		if i%2 == 1 {
			next = r
		}
		if err := srv.Apply(next.resources(t)); err != nil {
			t.Fatalf("swap %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("%d calls across 50 swaps", calls.Load())
	if failed.Load() > 0 || wrong.Load() > 0 {
		t.Fatalf("%d failed and %d wrong calls across the swaps", failed.Load(), wrong.Load())
	}
	if n := closedClientConns(srv); n != 0 {
		t.Fatalf("%v client connections closed during the swaps", n)
	}
}
