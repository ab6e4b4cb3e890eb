//go:build linux

package proxy

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/wire"
)

// TestLoopHandoffsCounted: a handler that waits on one of the epoll
// mode's event loops is handed off the loop by its watchdog, and the
// proxy's metamesh_event_loop_handoffs_total counts it.
func TestLoopHandoffsCounted(t *testing.T) {
	srv := New(zap.NewNop(), metrics.NewProxy())
	if err := srv.SetIOMode(IOEpoll, wire.LoopOptions{}); err != nil {
		t.Fatal(err)
	}
	handoffs := func() float64 {
		t.Helper()
		n, err := testutil.GatherAndCount(srv.Metrics().Registry, "metamesh_event_loop_handoffs_total")
		if err != nil || n != 1 {
			t.Fatalf("metamesh_event_loop_handoffs_total: %d series, %v", n, err)
		}
		return testutil.ToFloat64(srv.loopHandoffs())
	}
	before := handoffs()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	codec, err := redis.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	nc := srv.loopFor(accepted, codec, 0, false).Enroll(accepted)
	if nc == accepted {
		t.Fatal("the connection was not enrolled on a loop")
	}
	release := make(chan struct{})
	done := make(chan error, 1)
	w := wire.NewWriter(nc, 0)
	go func() {
		done <- wire.NewReader(nc, codec, wire.ReadOptions{}).Run(func(*protocols.Message) error {
			<-release // the handler waits, holding the loop
			return nil
		}, func() {})
		w.Close()
	}()
	if _, err := client.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); handoffs() == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("metamesh_event_loop_handoffs_total stayed at %v while a handler waited", before)
		}
	}
	close(release)
	_ = client.Close()
	<-done // the read loop ends at the client's close
}

// TestEpollDubbo: in the epoll mode Dubbo (a multiplexed codec) is read
// on the event loops, clients and upstream connections alike, and keeps
// its behaviour: clients using the same request IDs over the shared
// upstream connections get their own replies, and a malformed frame
// closes only its own connection.
func TestEpollDubbo(t *testing.T) {
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}, IOMode: IOEpoll})
	var wg sync.WaitGroup
	clients := make([]*client, 8)
	for k := range clients {
		clients[k] = dial(t, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[k]
			for id := uint64(1); id <= 200; id++ {
				tag := fmt.Sprintf("c%d-%d", k, id)
				c.send(dubbo.AppendRequest(nil, dubbo.Request{ID: id, TwoWay: true, Service: svc, Method: "m", Args: []string{"x"},
					Attachments: []protocols.Header{header("x-tag", tag)}}))
				_, gotID, status, value, err := c.read()
				if err != nil || gotID != id || status != 20 || value != "v1|m|"+tag+"|" {
					t.Errorf("client %d id %d: reply %d, status %d, %q, %v", k, id, gotID, status, value, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if onLoop, _ := clientsOnLoops(srv); onLoop != len(clients) {
		t.Errorf("%d of %d Dubbo clients read on an event loop", onLoop, len(clients))
	}

	bad := dial(t, addr)
	bad.send([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	expectEOF(t, bad.nc)
	if status, _ := clients[0].call(1000, svc, "m"); status != 20 {
		t.Fatalf("another client broke with the malformed frame: status %d", status)
	}
}

// clientsOnLoops counts srv's client connections read on an event loop and
// those read in goroutines of their own.
func clientsOnLoops(srv *Server) (loop, goroutine int) {
	srv.connMu.Lock()
	defer srv.connMu.Unlock()
	for d := range srv.conns {
		if _, ok := d.nc.(*net.TCPConn); ok {
			goroutine++
		} else {
			loop++
		}
	}
	return loop, goroutine
}

// TestEpollListenerAskingRateLimitServiceReadInGoroutines: in the epoll
// mode a client of a listener whose routes have a global rate limit is
// read in a goroutine of its own (a request waiting on the service costs
// less there than handed off a loop), and its requests are asked about
// and answered; a listener without one keeps its clients on the loops.
func TestEpollListenerAskingRateLimitServiceReadInGoroutines(t *testing.T) {
	up := startEcho(t, "v1")
	rls := startOKRateLimitService(t)
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}, IOMode: IOEpoll, RLS: []string{rls.addr},
		Global: `domain: d, rate_limit_service: rls, request_timeout: 1s, descriptors: [{property: method, descriptor_key: method}]`})
	c := dial(t, addr)
	if status, _ := c.call(1, svc, "m"); status != 20 {
		t.Fatalf("status %d through the listener with a global limit", status)
	}
	if rls.calls.Load() == 0 {
		t.Error("the rate-limit service was not asked")
	}
	if loop, goroutine := clientsOnLoops(srv); loop != 0 || goroutine != 1 {
		t.Errorf("with a global limit: %d clients on a loop, %d in goroutines; want 0 and 1", loop, goroutine)
	}

	plain, plainAddr := startProxy(t, setup{V1: []string{up.addr()}, IOMode: IOEpoll})
	if status, _ := dial(t, plainAddr).call(1, svc, "m"); status != 20 {
		t.Fatalf("status %d through the listener without a global limit", status)
	}
	if loop, goroutine := clientsOnLoops(plain); loop != 1 || goroutine != 0 {
		t.Errorf("without a global limit: %d clients on a loop, %d in goroutines; want 1 and 0", loop, goroutine)
	}
}

// TestSetIOModeLoops: the epoll mode runs on as many event loops as asked
// (half of GOMAXPROCS, at least one, for 0), and Servers asking for the
// same number share them.
func TestSetIOModeLoops(t *testing.T) {
	loops := func(n int) *wire.Loops {
		t.Helper()
		srv := New(zap.NewNop(), metrics.NewProxy())
		if err := srv.SetIOMode(IOEpoll, wire.LoopOptions{Count: n}); err != nil {
			t.Fatal(err)
		}
		return srv.loops.Load()
	}
	one := loops(1)
	if one.Len() != 1 {
		t.Errorf("SetIOMode(epoll, 1): %d loops", one.Len())
	}
	if loops(1) != one {
		t.Error("two Servers asking for one loop got different loops")
	}
	if n, want := loops(0).Len(), max(1, runtime.GOMAXPROCS(0)/2); n != want {
		t.Errorf("SetIOMode(epoll, 0): %d loops, want %d (GOMAXPROCS %d)", n, want, runtime.GOMAXPROCS(0))
	}
}
