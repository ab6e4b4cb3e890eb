//go:build linux

package upstream

import (
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/proxy/wire"
)

// TestSharedPicksTheCallersLoop: in the epoll mode a multiplexed pool
// gives a call the connection on its client's event loop (the loop its
// Affinity picks), when one has room, instead of the next round robin.
func TestSharedPicksTheCallersLoop(t *testing.T) {
	ls, err := wire.NewLoops(wire.LoopOptions{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn // the server holds its connections and answers nothing
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
	m := NewManager(zap.NewNop(), Stats{})
	m.SetLoops(ls)
	t.Cleanup(m.Drain)
	codec, err := dubbo.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := m.Pool(ln.Addr().String(), codec, Options{ConnectTimeout: time.Second, MaxConnections: 2})
	grown := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		s := p.acq.(*shared)
		return len(s.all) == 2 && !s.growing
	}
	// The first call dials; the pool grows to 2 in the background.
	for deadline := time.Now().Add(5 * time.Second); !grown(); time.Sleep(2 * time.Millisecond) {
		if _, err := p.acq.acquire(&Call{}); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the pool did not grow to 2 connections")
		}
	}
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
