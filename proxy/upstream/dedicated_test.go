package upstream_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// resetCodec is the pipelined idCodec with a reset of one request whose
// payload is send; the reset succeeds when the reply's payload is want
// (the test server echoes payloads).
type resetCodec struct {
	idCodec
	send, want string
}

func (c resetCodec) Reset(dst []byte) ([]byte, int) {
	return encodeFrame(dst, protocols.KindRequest, 0, c.send), 1
}

func (c resetCodec) ResetReplyOK(i int, m *protocols.Message) bool {
	return i == 0 && payloadOf(m.Raw) == c.want
}

var goodReset = resetCodec{idCodec{protocols.Pipelined}, "reset", "reset"}

// dedicatedPool returns a pool of codec for addr from a fresh manager,
// drained at the end.
func dedicatedPool(t *testing.T, addr string, codec protocols.Codec, opts upstream.Options) (*upstream.Pool, *stats) {
	t.Helper()
	st := &stats{}
	m := upstream.NewManager(zap.NewNop(), st.hooks())
	t.Cleanup(m.Drain)
	return m.Pool(addr, codec, opts), st
}

// sendOn sends a call with payload on d and flushes.
func sendOn(t *testing.T, d *upstream.Dedicated, rcv upstream.Receiver, payload string) *upstream.Call {
	t.Helper()
	c := newCall(rcv, protocols.KindRequest, 1, payload)
	var b wire.Batch
	if err := d.Send(c, &b); err != nil {
		t.Fatal(err)
	}
	b.Flush()
	return c
}

// use takes a dedicated connection and has payload answered on it.
func use(t *testing.T, p *upstream.Pool, rcv *recorder, payload string) *upstream.Dedicated {
	t.Helper()
	d, err := p.Dedicated()
	if err != nil {
		t.Fatal(err)
	}
	sendOn(t, d, rcv, payload)
	if e := rcv.wait(t, 1)[0]; !e.respond || e.payload != payload {
		t.Fatalf("call %q on a dedicated connection: %+v", payload, e)
	}
	return d
}

// TestDedicatedReuse: a released dedicated connection is reset and reused
// only when the codec can reset it, the server answers the reset as
// expected, and the pool keeps idle connections; otherwise it closes.
func TestDedicatedReuse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		codec    protocols.Codec
		opts     upstream.Options
		kept     bool
		wantSent []string
	}{
		{"reset and reused", goodReset, upstream.Options{}, true, []string{"a", "reset", "b"}},
		{"unexpected reset reply", resetCodec{idCodec{protocols.Pipelined}, "bogus", "reset"}, upstream.Options{}, false, []string{"a", "bogus", "b"}},
		{"codec without reset", idCodec{protocols.Pipelined}, upstream.Options{}, false, []string{"a", "b"}},
		{"idle pooling off", goodReset, upstream.Options{MaxIdleDedicated: -1}, false, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, nil)
			pool, st := dedicatedPool(t, srv.addr(), tc.codec, tc.opts)
			rcv := newRecorder()
			use(t, pool, rcv, "a").Release()
			wantConns := int32(2)
			if tc.kept {
				eventually(t, "the connection to be idle", func() bool { return pool.IdleDedicated() == 1 })
				wantConns = 1
			} else {
				eventually(t, "the connection to close", func() bool { return st.closed.Load() == 1 })
			}
			d := use(t, pool, rcv, "b")
			rcv.quiet(t) // the reset's reply reached no receiver
			if got := srv.accepted.Load(); got != wantConns {
				t.Errorf("the server accepted %d connections, want %d", got, wantConns)
			}
			if got := st.opened.Load(); got != wantConns {
				t.Errorf("ConnOpened %d times, want %d", got, wantConns)
			}
			if got := srv.payloads(); !slices.Equal(got, tc.wantSent) {
				t.Errorf("the server got %q, want %q", got, tc.wantSent)
			}
			if n := pool.IdleDedicated(); n != 0 {
				t.Errorf("%d idle with the only connection in use", n)
			}
			d.Release()
		})
	}
}

// TestDedicatedInFlightNotReused: a connection released with a call in
// flight (a blocking command whose client left) is not reused, nor reset,
// before that call's reply arrives; the reply still reaches its receiver.
func TestDedicatedInFlightNotReused(t *testing.T) {
	srv := newServer(t, nil)
	pool, _ := dedicatedPool(t, srv.addr(), goodReset, upstream.Options{})
	rcv := newRecorder()
	d1, err := pool.Dedicated()
	if err != nil {
		t.Fatal(err)
	}
	held := sendOn(t, d1, rcv, hold)
	d1.Release()
	use(t, pool, rcv, "b").Release() // must not get d1's connection
	if got := srv.accepted.Load(); got != 2 {
		t.Fatalf("the server accepted %d connections, want 2: a connection with a call in flight was reused", got)
	}
	eventually(t, "the second connection to be idle", func() bool { return pool.IdleDedicated() == 1 })
	srv.releaseHeld()
	if e := rcv.wait(t, 1)[0]; e.call != held || !e.respond || e.payload != hold {
		t.Fatalf("the held call: %+v, want its reply (a reset sent before it would have taken it)", e)
	}
	eventually(t, "the first connection to be idle once answered", func() bool { return pool.IdleDedicated() == 2 })
	rcv.quiet(t)
}

// TestDedicatedStaleRelease: a second Release of a handle whose connection
// another client now uses changes nothing.
func TestDedicatedStaleRelease(t *testing.T) {
	srv := newServer(t, nil)
	pool, _ := dedicatedPool(t, srv.addr(), goodReset, upstream.Options{})
	rcv := newRecorder()
	d1 := use(t, pool, rcv, "a")
	d1.Release()
	eventually(t, "the connection to be idle", func() bool { return pool.IdleDedicated() == 1 })
	d2, err := pool.Dedicated()
	if err != nil {
		t.Fatal(err)
	}
	d1.Release()
	sendOn(t, d2, rcv, "c")
	if e := rcv.wait(t, 1)[0]; !e.respond || e.payload != "c" {
		t.Fatalf("call on the reused connection: %+v", e)
	}
	if got, want := srv.payloads(), []string{"a", "reset", "c"}; !slices.Equal(got, want) {
		t.Fatalf("the server got %q, want %q", got, want)
	}
	if n := pool.IdleDedicated(); n != 0 {
		t.Fatalf("%d idle: the stale Release put back a connection in use", n)
	}
	d2.Release()
}

// TestDedicatedIdleBounds: the idle set keeps at most MaxIdleDedicated
// connections, closes those idle for DedicatedIdleTimeout, and a drained
// pool closes its idle connections at once.
func TestDedicatedIdleBounds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     upstream.Options
		drain    bool
		wantIdle int   // once both connections are released
		wantEnd  int32 // connections closed in the end
	}{
		{"max idle", upstream.Options{MaxIdleDedicated: 1}, false, 1, 1},
		{"idle timeout", upstream.Options{DedicatedIdleTimeout: 20 * time.Millisecond}, false, 0, 2},
		{"drained", upstream.Options{}, true, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, nil)
			pool, st := dedicatedPool(t, srv.addr(), goodReset, tc.opts)
			rcv := newRecorder()
			d1, d2 := use(t, pool, rcv, "a"), use(t, pool, rcv, "b")
			d1.Release()
			d2.Release()
			if tc.drain {
				eventually(t, "both connections to be idle", func() bool { return pool.IdleDedicated() == 2 })
				pool.Drain()
				if _, err := pool.Dedicated(); !errors.Is(err, upstream.ErrPoolClosed) {
					t.Errorf("Dedicated on a drained pool: %v, want ErrPoolClosed", err)
				}
			}
			eventually(t, "the connections to close", func() bool {
				return st.closed.Load() == tc.wantEnd && srv.ended.Load() == tc.wantEnd
			})
			if n := pool.IdleDedicated(); n != tc.wantIdle {
				t.Fatalf("%d idle, want %d", n, tc.wantIdle)
			}
			rcv.quiet(t)
		})
	}
}

// TestDedicatedLeave: a client that leaves with a call in flight on its
// own connection (a blocking command whose reply may never come) has the
// connection closed at once and the call failed, not kept open for good;
// one that leaves with nothing in flight has its connection reused.
func TestDedicatedLeave(t *testing.T) {
	srv := newServer(t, nil)
	pool, _ := dedicatedPool(t, srv.addr(), goodReset, upstream.Options{})
	rcv := newRecorder()
	d1, err := pool.Dedicated()
	if err != nil {
		t.Fatal(err)
	}
	held := sendOn(t, d1, rcv, hold)
	d1.Leave()
	if e := rcv.wait(t, 1)[0]; e.call != held || e.respond {
		t.Fatalf("the held call of a client that left: %+v, want it failed at once", e)
	}
	if n := pool.IdleDedicated(); n != 0 {
		t.Fatalf("%d idle dedicated connections: the busy one was kept", n)
	}
	use(t, pool, rcv, "b").Leave()
	eventually(t, "the idle connection to be reused", func() bool { return pool.IdleDedicated() == 1 })
	srv.releaseHeld()
	rcv.quiet(t)
}

// TestDedicatedDiedBeforeFirstSend: a dedicated connection taken from the
// idle set that dies before anything is sent on it is replaced by a new
// one: the server saw nothing of this client, so the request goes out
// instead of failing.
func TestDedicatedDiedBeforeFirstSend(t *testing.T) {
	srv := newServer(t, nil)
	pool, st := dedicatedPool(t, srv.addr(), goodReset, upstream.Options{})
	rcv := newRecorder()
	use(t, pool, rcv, "a").Release()
	eventually(t, "the connection to be idle", func() bool { return pool.IdleDedicated() == 1 })
	d, err := pool.Dedicated()
	if err != nil {
		t.Fatal(err)
	}
	srv.closeConns()
	eventually(t, "the idle connection to close", func() bool { return st.closed.Load() == 1 })
	sendOn(t, d, rcv, "b")
	if e := rcv.wait(t, 1)[0]; !e.respond || e.payload != "b" {
		t.Fatalf("call on the replaced connection: %+v", e)
	}
	if got := srv.accepted.Load(); got != 2 {
		t.Fatalf("the server accepted %d connections, want 2 (the dead one replaced)", got)
	}
	d.Release()
}

// TestDedicatedWithdrawn: the calls of a client that went away are taken
// back from its own connection, pinned or already released (a blocking
// command, let go once answered), and the connection is closed: it is
// never swept by the default timeout, and a blocking command's reply may
// never come. Other calls on it (a session's preamble) fail with the
// close.
func TestDedicatedWithdrawn(t *testing.T) {
	for _, released := range []bool{false, true} {
		t.Run(fmt.Sprintf("released=%v", released), func(t *testing.T) {
			srv := newServer(t, nil)
			st := &stats{}
			m := upstream.NewManager(zap.NewNop(), st.hooks())
			t.Cleanup(m.Drain)
			pool := m.Pool(srv.addr(), goodReset, upstream.Options{})
			preamble, gone := newRecorder(), newRecorder()
			d, err := pool.Dedicated()
			if err != nil {
				t.Fatal(err)
			}
			sendOn(t, d, preamble, hold)
			held := sendOn(t, d, gone, hold)
			if released {
				d.Release()
			}
			got := m.Withdraw(func(c *upstream.Call) bool { return c.Receiver == gone })
			if len(got) != 1 || got[0] != held {
				t.Fatalf("withdrew %d calls, want the departed client's one", len(got))
			}
			got[0].Release()
			if e := preamble.wait(t, 1)[0]; e.respond || !errors.Is(e.err, upstream.ErrReset) {
				t.Fatalf("the preamble call: %+v, want it failed by the close", e)
			}
			eventually(t, "the connection to close", func() bool { return st.closed.Load() == 1 })
			gone.quiet(t)
			d.Leave() // the client's own handle, afterwards: nothing left to do
			if n := pool.IdleDedicated(); n != 0 {
				t.Fatalf("%d idle: the closed connection was kept", n)
			}
		})
	}
}
