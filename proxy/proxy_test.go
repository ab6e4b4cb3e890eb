package proxy

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
)

func TestRoutesByAttribute(t *testing.T) {
	v1, v2 := startEcho(t, "v1"), startEcho(t, "v2")
	_, addr := startProxy(t, setup{V1: []string{v1.addr()}, V2: []string{v2.addr()}, MutateTo: "metamesh"})
	c := dial(t, addr)

	status, value := c.call(7, svc, "sayHello", header("x-tag", "a"))
	if status != 20 || value != "v1|sayHello|a|metamesh" {
		t.Fatalf("default route: status %d value %q, want 20 v1|sayHello|a|metamesh", status, value)
	}
	status, value = c.call(8, svc, "sayHello", header("batchjob", "true"))
	if status != 20 || !strings.HasPrefix(value, "v2|") {
		t.Fatalf("batchjob route: status %d value %q, want v2", status, value)
	}
	// The batchjob route sets no mutation: the attachment must be absent.
	if strings.HasSuffix(value, "metamesh") {
		t.Fatalf("batchjob route carried the default route's mutation: %q", value)
	}
}

func TestLocalReplies(t *testing.T) {
	up := startEcho(t, "v1")
	dead := deadAddr(t)
	_, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{dead}})
	c := dial(t, addr)

	t.Run("unknown service", func(t *testing.T) {
		status, value := c.call(1, "com.example.Nope", "m")
		if status != 60 || !strings.Contains(value, "com.example.Nope") {
			t.Fatalf("status %d %q, want 60 naming the service", status, value)
		}
	})
	t.Run("connect failure", func(t *testing.T) {
		status, value := c.call(2, svc, "m", header("batchjob", "true"))
		if status != 80 || !strings.Contains(value, "cluster v2") {
			t.Fatalf("status %d %q, want 80 naming cluster v2", status, value)
		}
	})
	t.Run("heartbeat answered locally", func(t *testing.T) {
		c.send(dubbo.AppendHeartbeat(nil, 99))
		kind, id, status, _, err := c.read()
		if err != nil || kind != protocols.KindHeartbeatReply || id != 99 || status != 20 {
			t.Fatalf("got kind %v id %d status %d err %v, want heartbeat reply 99/20", kind, id, status, err)
		}
		if n := up.heartbeats.Load(); n != 0 {
			t.Fatalf("upstream saw %d heartbeats, want 0", n)
		}
	})
	t.Run("connection survives", func(t *testing.T) {
		if status, _ := c.call(3, svc, "m"); status != 20 {
			t.Fatalf("status %d after local replies, want 20", status)
		}
	})
}

func TestNoEndpoints(t *testing.T) {
	up := startEcho(t, "v1")
	_, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: nil})
	status, value := dial(t, addr).call(1, svc, "m", header("batchjob", "true"))
	if status != 80 || !strings.Contains(value, "no healthy upstream in cluster v2") {
		t.Fatalf("status %d %q, want 80 no healthy upstream", status, value)
	}
}

func TestBadFrameClosesOnlyItsConnection(t *testing.T) {
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}})
	good, bad := dial(t, addr), dial(t, addr)
	if status, _ := good.call(1, svc, "m"); status != 20 {
		t.Fatalf("status %d", status)
	}
	bad.send([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	expectEOF(t, bad.nc)
	if got := testutil.ToFloat64(srv.Metrics().DecodeErrors.WithLabelValues("dubbo", "downstream")); got != 1 {
		t.Fatalf("decode errors counter = %v, want 1", got)
	}
	if status, _ := good.call(2, svc, "m"); status != 20 {
		t.Fatalf("the other connection broke: status %d", status)
	}
}

// Two clients use the same request IDs over the shared upstream
// connections; each must get its own replies.
func TestIDRewriteKeepsClientsApart(t *testing.T) {
	up := startEcho(t, "v1")
	_, addr := startProxy(t, setup{V1: []string{up.addr()}})
	var wg sync.WaitGroup
	for k := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, addr)
			for id := uint64(1); id <= 200; id++ {
				tag := fmt.Sprintf("c%d-%d", k, id)
				status, value := c.call(id, svc, "m", header("x-tag", tag))
				if status != 20 || value != "v1|m|"+tag+"|" {
					t.Errorf("client %d id %d: %d %q", k, id, status, value)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestApplyKeepsConnectionsAndRejectsBadConfig(t *testing.T) {
	v1, v2 := startEcho(t, "v1"), startEcho(t, "v2")
	cfg := setup{Listen: freeAddr(t), V1: []string{v1.addr()}, V2: []string{v2.addr()}, W1: 100}
	srv, addr := startProxy(t, cfg)
	c := dial(t, addr)
	if _, v := c.call(1, svc, "m"); !strings.HasPrefix(v, "v1|") {
		t.Fatalf("got %q before the swap, want v1", v)
	}
	cfg.W1, cfg.W2 = 0, 100
	if err := srv.Apply(cfg.resources(t)); err != nil {
		t.Fatal(err)
	}
	if _, v := c.call(2, svc, "m"); !strings.HasPrefix(v, "v2|") {
		t.Fatalf("got %q after the swap, want v2 on the same connection", v)
	}

	bad := cfg.resources(t)
	bad.Routes[0].VirtualHosts[0].Routes[0].GetMatch().Headers[0].GetStringMatch().IgnoreCase = true
	err := srv.Apply(bad)
	if err == nil || !strings.Contains(err.Error(), "ignore_case") {
		t.Fatalf("Apply(bad) = %v, want an error naming ignore_case", err)
	}
	if _, v := c.call(3, svc, "m"); !strings.HasPrefix(v, "v2|") {
		t.Fatalf("got %q after a rejected config, want the last good one (v2)", v)
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	up := startEcho(t, "v1")
	up.delay.Store(int64(200 * time.Millisecond))
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}})
	c := dial(t, addr)
	c.send(dubbo.AppendRequest(nil, dubbo.Request{ID: 5, TwoWay: true, Service: svc, Method: "slow"}))
	deadline := time.Now().Add(2 * time.Second)
	for up.requests.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_, id, status, value, err := c.read()
	if err != nil || id != 5 || status != 20 || !strings.HasPrefix(value, "v1|slow") {
		t.Fatalf("in-flight reply after drain: id %d status %d %q err %v", id, status, value, err)
	}
}

// TestShutdownStopsReadingBusyClients: a client that keeps a request in
// flight all the time doesn't hold the drain until its deadline: its
// connection stops being read, the requests already read are answered,
// and Shutdown ends.
func TestShutdownStopsReadingBusyClients(t *testing.T) {
	up := startEcho(t, "v1")
	up.delay.Store(int64(100 * time.Millisecond))
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}})
	c := dial(t, addr)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for id := uint64(1); ; id++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if _, err := c.nc.Write(dubbo.AppendRequest(nil, dubbo.Request{ID: id, TwoWay: true, Service: svc, Method: "busy"})); err != nil {
				return
			}
		}
	}()
	waitUntil(t, 2*time.Second, "requests in flight", func() bool { return up.requests.Load() > 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := srv.Shutdown(ctx)
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("Shutdown with a busy client: %v (after %v)", err, time.Since(start))
	}
	t.Logf("drained a busy client in %v", time.Since(start))
}

// TestRenameListenerKeepsItsPort: a listener renamed on the same address
// keeps its socket (binding it again would fail) and its connections.
func TestRenameListenerKeepsItsPort(t *testing.T) {
	up := startEcho(t, "v1")
	cfg := setup{Listen: freeAddr(t), V1: []string{up.addr()}}
	srv, addr := startProxy(t, cfg)
	c := dial(t, addr)
	if status, _ := c.call(1, svc, "m"); status != 20 {
		t.Fatalf("before the rename: status %d", status)
	}
	res := cfg.resources(t)
	res.Listeners[0].Name = "renamed"
	if err := srv.Apply(res); err != nil {
		t.Fatalf("Apply with the listener renamed: %v", err)
	}
	if got := srv.ListenerAddr("renamed"); got != addr {
		t.Fatalf("listener renamed is on %q, want %q", got, addr)
	}
	if srv.ListenerAddr("dubbo") != "" {
		t.Fatal("the old name still has a listener")
	}
	if status, _ := c.call(2, svc, "m"); status != 20 {
		t.Fatalf("the existing connection after the rename: status %d", status)
	}
	if status, _ := dial(t, addr).call(3, svc, "m"); status != 20 {
		t.Fatalf("a new connection after the rename: status %d", status)
	}
}
