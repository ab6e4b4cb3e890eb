package upstream_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
)

var models = []protocols.Model{protocols.Multiplexed, protocols.Pipelined, protocols.Exclusive}

func TestMultiplexedRewritesIDs(t *testing.T) {
	const n = 50
	// One connection, answered in reverse order: only the ID pairs a
	// response with its call.
	srv := newServer(t, func(s *server) { s.reverse = n })
	pool, _ := newPool(t, srv.addr(), protocols.Multiplexed, 1)
	rcv := newRecorder()
	calls := map[*upstream.Call]string{}
	clientIDs := map[uint64]bool{}
	for i := range n {
		// Two clients could use the same ID; the pool must not care.
		id := uint64(1000 + i%10)
		clientIDs[id] = true
		c := newCall(rcv, protocols.KindRequest, id, fmt.Sprintf("call-%d", i))
		calls[c] = fmt.Sprintf("call-%d", i)
		if err := sendNow(pool, c); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	for _, e := range rcv.wait(t, n) {
		want, ok := calls[e.call]
		if !ok {
			t.Fatalf("outcome for an unknown call: %+v", e)
		}
		delete(calls, e.call)
		if !e.respond || e.payload != want {
			t.Errorf("call %s got respond=%v payload %q (err %v)", want, e.respond, e.payload, e.err)
		}
		if !clientIDs[e.call.Req.ID] {
			t.Errorf("call %s: Req.ID changed to %d; it must keep the client's ID", want, e.call.Req.ID)
		}
	}
	rcv.quiet(t)
	seen := srv.seenIDs()
	if len(seen) != n {
		t.Fatalf("server saw %d requests, want %d", len(seen), n)
	}
	distinct := map[uint64]bool{}
	for _, id := range seen {
		if clientIDs[id] {
			t.Errorf("server saw the client's ID %d; the pool must rewrite it", id)
		}
		distinct[id] = true
	}
	if len(distinct) != n {
		t.Errorf("server saw %d distinct IDs for %d requests on one connection", len(distinct), n)
	}
	if got := srv.accepted.Load(); got != 1 {
		t.Errorf("%d connections with MaxConnections 1", got)
	}
}

func TestMultiplexedConcurrentSends(t *testing.T) {
	srv := newServer(t, nil)
	pool, st := newPool(t, srv.addr(), protocols.Multiplexed, 3)
	rcv := newRecorder()
	const senders, each = 8, 50
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, fmt.Sprintf("%d/%d", s, i))); err != nil {
					t.Errorf("Send: %v", err)
				}
			}
		})
	}
	wg.Wait()
	for _, e := range rcv.wait(t, senders*each) {
		if !e.respond || e.payload != payloadOf(e.call.Req.Raw) {
			t.Errorf("call %q got %+v", payloadOf(e.call.Req.Raw), e)
		}
	}
	if got := srv.accepted.Load(); got > 3 {
		t.Errorf("%d connections, more than MaxConnections (3)", got)
	}
	// The pool grows in the background while traffic flows, to exactly
	// MaxConnections.
	fill(t, pool, srv, rcv, protocols.Multiplexed, 3)
	// The pool counts a connection once dialed, the server once its
	// accept loop runs: wait for it.
	eventually(t, "the server to accept 3 connections", func() bool { return srv.accepted.Load() >= 3 })
	if got := srv.accepted.Load(); got != 3 {
		t.Errorf("%d connections, want MaxConnections (3)", got)
	}
	if got := st.opened.Load(); got != 3 {
		t.Errorf("ConnOpened called %d times, want 3", got)
	}
}

func TestPipelinedFIFO(t *testing.T) {
	// The server answers with ID 0: responses pair with calls by order.
	srv := newServer(t, func(s *server) { s.zeroIDs = true })
	pool, _ := newPool(t, srv.addr(), protocols.Pipelined, 1)
	rcv := newRecorder()
	const n = 100
	var sent []*upstream.Call
	for i := range n {
		c := newCall(rcv, protocols.KindRequest, uint64(i+1), fmt.Sprintf("req-%d", i))
		if err := sendNow(pool, c); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		sent = append(sent, c)
	}
	for i, e := range rcv.wait(t, n) {
		if e.call != sent[i] {
			t.Fatalf("outcome %d is for call %q, want %q (FIFO)", i, payloadOf(e.call.Req.Raw), payloadOf(sent[i].Req.Raw))
		}
		if !e.respond || e.payload != fmt.Sprintf("req-%d", i) {
			t.Errorf("call %d got %+v", i, e)
		}
	}
	// Pipelined requests keep their own IDs on the wire.
	seen := srv.seenIDs()
	for i, id := range seen {
		if id != uint64(i+1) {
			t.Fatalf("server saw ID %d for request %d, want the client's %d", id, i, i+1)
		}
	}
}

func TestExclusive(t *testing.T) {
	t.Run("busy connection opens another", func(t *testing.T) {
		srv := newServer(t, nil)
		pool, _ := newPool(t, srv.addr(), protocols.Exclusive, 2)
		rcv := newRecorder()
		a := newCall(rcv, protocols.KindRequest, 1, hold)
		b := newCall(rcv, protocols.KindRequest, 2, hold)
		for _, c := range []*upstream.Call{a, b} {
			if err := sendNow(pool, c); err != nil {
				t.Fatalf("Send: %v", err)
			}
		}
		eventually(t, "two connections", func() bool { return srv.accepted.Load() == 2 })
		if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 3, "x")); !errors.Is(err, upstream.ErrOverloaded) {
			t.Fatalf("third Send with 2 busy of MaxConnections 2 = %v, want ErrOverloaded", err)
		}
		srv.releaseHeld()
		got := map[*upstream.Call]bool{}
		for _, e := range rcv.wait(t, 2) {
			if !e.respond {
				t.Errorf("got %+v, want a response", e)
			}
			got[e.call] = true
		}
		if !got[a] || !got[b] {
			t.Error("each held call should get its own response")
		}
		// Answered connections are idle again and are reused.
		for i := range 5 {
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, uint64(10+i), "again")); err != nil {
				t.Fatalf("Send after the answers: %v", err)
			}
			rcv.wait(t, 1)
		}
		if got := srv.accepted.Load(); got != 2 {
			t.Errorf("%d connections after reuse, want 2", got)
		}
	})

	t.Run("MaxConnections 1", func(t *testing.T) {
		srv := newServer(t, nil)
		pool, _ := newPool(t, srv.addr(), protocols.Exclusive, 1)
		rcv := newRecorder()
		if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, hold)); err != nil {
			t.Fatal(err)
		}
		if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 2, "x")); !errors.Is(err, upstream.ErrOverloaded) {
			t.Fatalf("second Send while busy = %v, want ErrOverloaded", err)
		}
		srv.releaseHeld()
		if e := rcv.wait(t, 1)[0]; !e.respond {
			t.Fatalf("held call: %+v", e)
		}
		if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 3, "x")); err != nil {
			t.Fatalf("Send once idle again: %v", err)
		}
		rcv.wait(t, 1)
		rcv.quiet(t)
	})

	t.Run("oneway frees the connection at once", func(t *testing.T) {
		srv := newServer(t, nil)
		pool, _ := newPool(t, srv.addr(), protocols.Exclusive, 1)
		rcv := newRecorder()
		for i := range 3 {
			if err := sendNow(pool, newCall(rcv, protocols.KindOneway, uint64(i), "fire")); err != nil {
				t.Fatalf("oneway Send %d: %v", i, err)
			}
		}
		eventually(t, "3 oneway requests", func() bool { return len(srv.seenIDs()) == 3 })
		rcv.quiet(t) // no outcome for oneway calls
		if got := srv.accepted.Load(); got != 1 {
			t.Errorf("%d connections, want 1", got)
		}
	})
}

func TestServerClosesWithCallsInFlight(t *testing.T) {
	for _, model := range models {
		t.Run(model.String(), func(t *testing.T) {
			srv := newServer(t, nil)
			maxConns := 2
			if model == protocols.Exclusive {
				maxConns = 5
			}
			pool, st := newPool(t, srv.addr(), model, maxConns)
			rcv := newRecorder()
			seen := fill(t, pool, srv, rcv, model, maxConns)
			const n = 5
			var sent []*upstream.Call
			for i := range n {
				c := newCall(rcv, protocols.KindRequest, uint64(i+1), hold)
				c.Affinity = uint64(i) // pipelined: spread over the slots
				if err := sendNow(pool, c); err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
				sent = append(sent, c)
			}
			// Every connection is accepted and holds its first request.
			eventually(t, "a held request on every connection", func() bool {
				return len(srv.seenIDs()) == seen+maxConns && srv.accepted.Load() == int32(maxConns)
			})
			srv.closeConns()
			failed := map[*upstream.Call]int{}
			for _, e := range rcv.wait(t, n) {
				if e.respond {
					t.Fatalf("got a response %q from a server that closed", e.payload)
				}
				if e.reason != protocols.ReasonNoHealthyUpstream {
					t.Errorf("Fail reason %s, want %s", e.reason, protocols.ReasonNoHealthyUpstream)
				}
				if e.err == nil || !strings.Contains(e.err.Error(), srv.addr()) {
					t.Errorf("Fail error %v does not name the upstream", e.err)
				}
				failed[e.call]++
			}
			rcv.quiet(t)
			for i, c := range sent {
				if failed[c] != 1 {
					t.Errorf("call %d failed %d times, want exactly once", i, failed[c])
				}
			}
			eventually(t, "ConnClosed for every connection", func() bool { return st.closed.Load() == st.opened.Load() })

			// The dead connections are gone: the next call dials anew.
			srv.releaseHeld()
			before := srv.accepted.Load()
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 99, "after")); err != nil {
				t.Fatalf("Send after the server closed: %v", err)
			}
			if e := rcv.wait(t, 1)[0]; !e.respond || e.payload != "after" {
				t.Errorf("call after reconnect: %+v", e)
			}
			if srv.accepted.Load() != before+1 {
				t.Errorf("no new connection after the old ones died")
			}
		})
	}
}

func TestDrain(t *testing.T) {
	for _, model := range models {
		t.Run(model.String(), func(t *testing.T) {
			srv := newServer(t, nil)
			pool, st := newPool(t, srv.addr(), model, 2)
			rcv := newRecorder()
			fill(t, pool, srv, rcv, model, 2)
			// Connection 1 holds a call in flight; connection 2 answers
			// at once and goes idle.
			held := newCall(rcv, protocols.KindRequest, 1, hold)
			if err := sendNow(pool, held); err != nil {
				t.Fatal(err)
			}
			quick := newCall(rcv, protocols.KindRequest, 2, "quick")
			quick.Affinity = 1 // pipelined: the other slot
			if err := sendNow(pool, quick); err != nil {
				t.Fatal(err)
			}
			if e := rcv.wait(t, 1)[0]; !e.respond || e.payload != "quick" {
				t.Fatalf("quick call: %+v", e)
			}
			// The pool counts a connection once dialed, the server once
			// it accepted it: the count may lag.
			eventually(t, "the server to accept two connections", func() bool { return srv.accepted.Load() >= 2 })
			if got := srv.accepted.Load(); got != 2 {
				t.Fatalf("%d connections, want 2 (one busy, one idle)", got)
			}

			pool.Drain()
			eventually(t, "the idle connection to close", func() bool { return srv.ended.Load() == 1 })
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 3, "late")); err == nil {
				t.Error("Send after Drain succeeded, want an error")
				rcv.wait(t, 1)
			}
			if got := srv.accepted.Load(); got != 2 {
				t.Errorf("%d connections after a Send on a drained pool, want 2", got)
			}

			srv.releaseHeld()
			e := rcv.wait(t, 1)[0]
			if e.call != held || !e.respond || e.payload != hold {
				t.Fatalf("in-flight call after Drain: %+v, want its response", e)
			}
			eventually(t, "the busy connection to close once answered", func() bool { return srv.ended.Load() == 2 })
			eventually(t, "ConnClosed twice", func() bool { return st.closed.Load() == 2 })
			rcv.quiet(t)
		})
	}
}

func TestDialFailure(t *testing.T) {
	addr := closedAddr(t)
	for _, model := range models {
		t.Run(model.String(), func(t *testing.T) {
			pool, st := newPool(t, addr, model, 1)
			rcv := newRecorder()
			// Twice: a failed dial must not use up the connection budget.
			for range 2 {
				err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, "x"))
				if err == nil || !strings.Contains(err.Error(), "connect "+addr) {
					t.Fatalf("Send to a closed port = %v, want a connect error naming %s", err, addr)
				}
				if errors.Is(err, upstream.ErrOverloaded) {
					t.Fatalf("Send = %v: a failed dial was counted as an open connection", err)
				}
			}
			if st.opened.Load() != 0 {
				t.Error("ConnOpened called for a failed dial")
			}
			rcv.quiet(t)
		})
	}
}

func TestHeartbeatAnswered(t *testing.T) {
	for _, model := range models {
		t.Run(model.String(), func(t *testing.T) {
			srv := newServer(t, nil)
			pool, _ := newPool(t, srv.addr(), model, 1)
			rcv := newRecorder()
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 5, heartbeat)); err != nil {
				t.Fatal(err)
			}
			if e := rcv.wait(t, 1)[0]; !e.respond || e.payload != heartbeat {
				t.Fatalf("call: %+v", e)
			}
			eventually(t, "the heartbeat reply", func() bool { return srv.heartbeats.Load() == 1 })
		})
	}
}

func TestUnexpectedResponse(t *testing.T) {
	tests := []struct {
		model protocols.Model
		// keeps: whether the connection survives a response to nothing.
		keeps bool
	}{
		{protocols.Multiplexed, true},
		{protocols.Pipelined, false},
		{protocols.Exclusive, false},
	}
	for _, tt := range tests {
		t.Run(tt.model.String(), func(t *testing.T) {
			srv := newServer(t, nil)
			pool, st := newPool(t, srv.addr(), tt.model, 1)
			rcv := newRecorder()
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, twice)); err != nil {
				t.Fatal(err)
			}
			if e := rcv.wait(t, 1)[0]; !e.respond {
				t.Fatalf("call: %+v", e)
			}
			rcv.quiet(t)
			if tt.keeps {
				eventually(t, "UnknownResp", func() bool { return st.unknown.Load() == 1 })
				if srv.ended.Load() != 0 {
					t.Error("the connection closed on an unknown response ID")
				}
				return
			}
			eventually(t, "the connection to close", func() bool { return srv.ended.Load() == 1 && st.closed.Load() == 1 })
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 2, "next")); err != nil {
				t.Fatalf("Send after the bad connection closed: %v", err)
			}
			if e := rcv.wait(t, 1)[0]; !e.respond || e.payload != "next" {
				t.Errorf("call on a new connection: %+v", e)
			}
		})
	}
}

func TestManager(t *testing.T) {
	m := upstream.NewManager(zap.NewNop(), upstream.Stats{})
	mux, pipe := idCodec{protocols.Multiplexed}, idCodec{protocols.Pipelined}
	a := m.Pool("127.0.0.1:1", mux, upstream.Options{})
	if m.Pool("127.0.0.1:1", mux, upstream.Options{MaxConnections: 9}) != a {
		t.Error("same address and codec gave a second pool")
	}
	b := m.Pool("127.0.0.1:1", pipe, upstream.Options{})
	c := m.Pool("127.0.0.1:2", mux, upstream.Options{})
	if b == a || c == a || b == c {
		t.Error("a different codec or address must get its own pool")
	}
	var asked []string
	m.Retain(func(addr string, codec protocols.Codec, _ string) bool {
		asked = append(asked, addr+"/"+codec.Model().String())
		return codec.Model() == protocols.Multiplexed
	})
	slices.Sort(asked)
	if want := []string{"127.0.0.1:1/multiplexed", "127.0.0.1:1/pipelined", "127.0.0.1:2/multiplexed"}; !slices.Equal(asked, want) {
		t.Errorf("Retain asked about %v, want %v", asked, want)
	}
	if err := sendNow(b, newCall(newRecorder(), protocols.KindRequest, 1, "x")); err == nil {
		t.Error("Send on a pool Retain dropped succeeded; it must be drained")
	}
	if m.Pool("127.0.0.1:1", mux, upstream.Options{}) != a {
		t.Error("Retain dropped a kept pool")
	}
	if m.Pool("127.0.0.1:1", pipe, upstream.Options{}) == b {
		t.Error("a dropped pool was handed out again")
	}
	m.Drain()
	if err := sendNow(a, newCall(newRecorder(), protocols.KindRequest, 1, "x")); err == nil {
		t.Error("Send after Manager.Drain succeeded")
	}
}

func TestNewCallCopies(t *testing.T) {
	raw := encodeFrame(nil, protocols.KindRequest, 42, "payload")
	var m protocols.Message
	if _, err := (idCodec{}).Decode(raw, &m); err != nil {
		t.Fatal(err)
	}
	m.Headers.Set("method", "sayHello")
	m.Marks[0] = 3
	c := upstream.NewCall(&m)
	// The proxy reuses its read buffer and Message: the call must not.
	copy(raw, make([]byte, len(raw)))
	m.Headers.Set("method", "other")
	if c.Req.ID != 42 || c.Req.Kind != protocols.KindRequest || c.Req.Marks[0] != 3 {
		t.Errorf("call fields: id %d kind %s marks %v", c.Req.ID, c.Req.Kind, c.Req.Marks)
	}
	if got := payloadOf(c.Req.Raw); got != "payload" {
		t.Errorf("call Raw payload %q after the source buffer changed", got)
	}
	if v, _ := c.Req.Headers.Get("method"); v != "sayHello" {
		t.Errorf("call header method = %q after the source changed", v)
	}
	c.Release()
}

// fill opens n connections in a shared pool before a test holds calls on
// them: a shared pool grows in the background once it has a connection,
// sending meanwhile on the ones it has. It returns how many requests the
// server has seen. Exclusive pools dial per call and need no filling.
func fill(t *testing.T, pool *upstream.Pool, srv *server, rcv *recorder, model protocols.Model, n int) int {
	t.Helper()
	if model == protocols.Exclusive {
		return 0
	}
	sent := 0
	for pool.Open() < n {
		c := newCall(rcv, protocols.KindRequest, uint64(1000+sent), "fill")
		c.Affinity = uint64(sent) // pipelined pools open a connection per affinity slot
		if err := sendNow(pool, c); err != nil {
			t.Fatalf("fill: %v", err)
		}
		rcv.wait(t, 1)
		sent++
		if sent > 1000 {
			t.Fatalf("the pool did not grow to %d connections", n)
		}
	}
	return len(srv.seenIDs())
}

// TestDialBackoff: after a failed dial, a pool that needs a new
// connection fails requests at once for a moment instead of dialing for
// each, then dials again; the failed dial took none of MaxConnections
// (exclusive: 1).
func TestDialBackoff(t *testing.T) {
	for _, model := range models {
		t.Run(model.String(), func(t *testing.T) {
			addr := closedAddr(t)
			maxConns := 2
			if model == protocols.Exclusive {
				maxConns = 1
			}
			pool, _ := newPool(t, addr, model, maxConns)
			rcv := newRecorder()
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, "x")); !errors.Is(err, upstream.ErrConnect) {
				t.Fatalf("Send to a closed port = %v, want ErrConnect", err)
			}
			srv := newServerOn(t, addr, nil)
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 2, "x")); !errors.Is(err, upstream.ErrConnect) {
				t.Fatalf("Send right after a failed dial = %v, want the remembered ErrConnect", err)
			}
			if got := srv.accepted.Load(); got != 0 {
				t.Fatalf("the pool dialed during the backoff: %d connections", got)
			}
			eventually(t, "a send to succeed after the backoff", func() bool {
				return sendNow(pool, newCall(rcv, protocols.KindRequest, 3, "back")) == nil
			})
			if e := rcv.wait(t, 1)[0]; !e.respond || e.payload != "back" {
				t.Fatalf("after the backoff: %+v", e)
			}
		})
	}
}

// TestPipelinedAffinity: a pipelined pool sends the calls of one affinity
// on one connection (so a server runs a client's commands in its order),
// and spreads affinities over MaxConnections connections.
func TestPipelinedAffinity(t *testing.T) {
	srv := newServer(t, func(s *server) { s.zeroIDs = true })
	pool, _ := newPool(t, srv.addr(), protocols.Pipelined, 3)
	rcv := newRecorder()
	for i := range 50 {
		c := newCall(rcv, protocols.KindRequest, uint64(i), "x")
		c.Affinity = 7
		if err := sendNow(pool, c); err != nil {
			t.Fatal(err)
		}
	}
	rcv.wait(t, 50)
	if got := srv.accepted.Load(); got != 1 {
		t.Fatalf("one affinity used %d connections, want 1", got)
	}
	for i := range 30 {
		c := newCall(rcv, protocols.KindRequest, uint64(i), "x")
		c.Affinity = uint64(i)
		if err := sendNow(pool, c); err != nil {
			t.Fatal(err)
		}
	}
	rcv.wait(t, 30)
	if got := srv.accepted.Load(); got != 3 {
		t.Fatalf("30 affinities used %d connections, want MaxConnections (3)", got)
	}
}

// TestConcurrentSendsShareOneDial: calls that find the connection they
// need not dialed yet (a new pool, an affinity slot) share one dial.
func TestConcurrentSendsShareOneDial(t *testing.T) {
	for _, model := range []protocols.Model{protocols.Multiplexed, protocols.Pipelined} {
		t.Run(model.String(), func(t *testing.T) {
			srv := newServer(t, nil)
			pool, st := newPool(t, srv.addr(), model, 1)
			rcv := newRecorder()
			const n = 32
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					if err := sendNow(pool, newCall(rcv, protocols.KindRequest, uint64(i), "x")); err != nil {
						t.Errorf("Send: %v", err)
					}
				})
			}
			close(start)
			wg.Wait()
			for _, e := range rcv.wait(t, n) {
				if !e.respond {
					t.Fatalf("call failed: %v", e.err)
				}
			}
			if got, opened := srv.accepted.Load(), st.opened.Load(); got != 1 || opened != 1 {
				t.Fatalf("%d connections accepted, %d opened; want 1", got, opened)
			}
		})
	}
}
