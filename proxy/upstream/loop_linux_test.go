//go:build linux

package upstream

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/proxy/wire"
)

// TestSharedPicksTheCallersLoop: in the epoll mode a multiplexed pool
// gives a call the connection on its client's event loop (the loop its
// Affinity picks), when one has room, instead of the next round robin.
func TestSharedPicksTheCallersLoop(t *testing.T) {
	ls, p := grownSharedPool(t, 2, 2)
	for i, a := range []uint64{0, 0, 1, 1, 0, 1, 1, 0} {
		cn, err := p.acq.acquire(&Call{Affinity: a})
		if err != nil {
			t.Fatal(err)
		}
		if want := ls.Pick(a); cn.loop != want {
			t.Errorf("call %d (affinity %d) got a connection on another loop than its client's", i, a)
		}
	}
}

// TestSharedSpreadsALoopsClients: the clients of one loop take the pool's
// connections on that loop in turn (two loops, two connections each:
// affinities 0, 2, 4, 6 are one loop's clients, and 0 and 4 share a
// connection, 2 and 6 the other), and a client keeps its connection.
func TestSharedSpreadsALoopsClients(t *testing.T) {
	ls, p := grownSharedPool(t, 2, 4)
	got := map[uint64]*conn{}
	for range 2 {
		for a := range uint64(8) {
			cn, err := p.acq.acquire(&Call{Affinity: a})
			if err != nil {
				t.Fatal(err)
			}
			if cn.loop != ls.Pick(a) {
				t.Errorf("affinity %d got a connection on another loop than its client's", a)
			}
			if was, ok := got[a]; ok && was != cn {
				t.Errorf("affinity %d moved to another connection with room on its own", a)
			}
			got[a] = cn
		}
	}
	for a := range uint64(4) {
		if got[a] == got[a+2] {
			t.Errorf("affinities %d and %d, consecutive clients of one loop, share a connection", a, a+2)
		}
		if got[a] != got[a+4] {
			t.Errorf("affinities %d and %d got two connections of a loop that has two", a, a+4)
		}
	}
}

// grownSharedPool returns event loops and a Dubbo pool on them with its
// MaxConnections dialed, to a server that holds its connections and
// answers nothing.
func grownSharedPool(t *testing.T, loops, conns int) (*wire.Loops, *Pool) {
	t.Helper()
	ls, m := loopManager(t, loops)
	codec, err := dubbo.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := m.Pool(holdingServer(t), codec, Options{ConnectTimeout: time.Second, MaxConnections: conns})
	grown := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		s := p.acq.(*shared)
		return len(s.all) == conns && !s.growing
	}
	// The first call dials; the pool grows in the background, a
	// connection per call that finds it short.
	for deadline := time.Now().Add(5 * time.Second); !grown(); time.Sleep(2 * time.Millisecond) {
		if _, err := p.acq.acquire(&Call{}); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pool did not grow to %d connections", conns)
		}
	}
	return ls, p
}

// loopManager returns that many event loops and a manager whose pools
// use them, drained when the test ends.
func loopManager(t *testing.T, loops int) (*wire.Loops, *Manager) {
	t.Helper()
	ls, err := wire.NewLoops(wire.LoopOptions{Count: loops})
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(zap.NewNop(), Stats{})
	m.SetLoops(ls)
	t.Cleanup(m.Drain)
	return ls, m
}

// holdingServer returns the address of a server that holds the
// connections it accepts and answers nothing.
func holdingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln.Addr().String()
}

// TestPipelinedOneConnectionPerLoop: a pipelined pool (Redis) on the event
// loops opens one connection per loop when max_connections is unset, each
// on the loop of the clients whose commands it carries; with TLS (read in
// goroutines), a limit set, or no loops, the limit is what it is.
func TestPipelinedOneConnectionPerLoop(t *testing.T) {
	codec, err := redis.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := holdingServer(t)
	for _, loops := range []int{1, 3} {
		ls, m := loopManager(t, loops)
		p := m.Pool(addr, codec, Options{ConnectTimeout: time.Second})
		conns := map[*conn]bool{}
		for a := range uint64(12) {
			cn, err := p.acq.acquire(&Call{Affinity: a})
			if err != nil {
				t.Fatal(err)
			}
			if cn.loop != ls.Pick(a) {
				t.Errorf("%d loops: affinity %d got a connection on another loop than its client's", loops, a)
			}
			conns[cn] = true
		}
		if len(conns) != loops {
			t.Errorf("%d loops: 12 clients used %d connections, want one per loop", loops, len(conns))
		}
		if got := m.Pool(addr, codec, Options{ConnectTimeout: time.Second, TLS: &tls.Config{}, TLSKey: "t"}).options().MaxConnections; got != DefaultOptions.MaxConnections {
			t.Errorf("%d loops: a TLS pool defaults to %d connections, want %d", loops, got, DefaultOptions.MaxConnections)
		}
		if got := m.Pool(addr, codec, Options{ConnectTimeout: time.Second, MaxConnections: 5}).options().MaxConnections; got != 5 {
			t.Errorf("%d loops: max_connections 5 became %d", loops, got)
		}
		// A config that unsets the limit again brings back one per loop.
		if got := m.Pool(addr, codec, Options{ConnectTimeout: time.Second}).options().MaxConnections; got != loops {
			t.Errorf("%d loops: max_connections unset again gives %d connections, want %d", loops, got, loops)
		}
	}
	m := NewManager(zap.NewNop(), Stats{})
	t.Cleanup(m.Drain)
	if got := m.Pool(addr, codec, Options{ConnectTimeout: time.Second}).options().MaxConnections; got != DefaultOptions.MaxConnections {
		t.Errorf("goroutine mode: %d connections by default, want %d", got, DefaultOptions.MaxConnections)
	}
}
