package upstream_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
)

// selfTimed is a recorder whose calls are timed by their sender.
type selfTimed struct{ *recorder }

func (selfTimed) SelfTimed() bool { return true }

// A call with no reply within the default timeout is failed with a
// timeout; multiplexed connections stay open (a call timed by its sender
// is left alone), the others are closed because a reply can't be skipped.
func TestDefaultTimeout(t *testing.T) {
	for _, model := range models {
		t.Run(model.String(), func(t *testing.T) {
			srv := newServer(t, func(s *server) { s.zeroIDs = model != protocols.Multiplexed })
			st := &stats{}
			m := upstream.NewManager(zap.NewNop(), st.hooks())
			t.Cleanup(m.Drain)
			m.SetDefaultTimeout(50 * time.Millisecond)
			pool := m.Pool(srv.addr(), idCodec{model}, upstream.Options{ConnectTimeout: time.Second, MaxConnections: 1})
			rcv := newRecorder()
			if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, hold)); err != nil {
				t.Fatal(err)
			}
			own := selfTimed{newRecorder()}
			if model == protocols.Multiplexed {
				if err := sendNow(pool, newCall(own, protocols.KindRequest, 2, "mine")); err != nil {
					t.Fatal(err)
				}
			}
			e := rcv.wait(t, 1)[0]
			if e.respond || e.reason != protocols.ReasonTimeout || !errors.Is(e.err, upstream.ErrTimeout) {
				t.Fatalf("held call: respond=%v reason %v err %v; want a timeout", e.respond, e.reason, e.err)
			}
			e.call.Release()
			if model != protocols.Multiplexed {
				eventually(t, "the connection closed", func() bool { return st.closed.Load() == 1 })
				return
			}
			srv.releaseHeld()
			if e := own.wait(t, 1)[0]; !e.respond || e.payload != "mine" {
				t.Fatalf("self-timed call: respond=%v reason %v err %v; the default timeout must leave it alone", e.respond, e.reason, e.err)
			}
			eventually(t, "the late reply counted", func() bool { return st.unknown.Load() == 1 })
			if n := st.closed.Load(); n != 0 {
				t.Fatalf("%d connections closed; a multiplexed timeout closes none", n)
			}
		})
	}
}

// With the default timeout off, nothing is failed.
func TestDefaultTimeoutOff(t *testing.T) {
	srv := newServer(t, nil)
	m := upstream.NewManager(zap.NewNop(), upstream.Stats{})
	t.Cleanup(m.Drain)
	m.SetDefaultTimeout(0)
	pool := m.Pool(srv.addr(), idCodec{protocols.Multiplexed}, upstream.Options{ConnectTimeout: time.Second})
	rcv := newRecorder()
	if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, hold)); err != nil {
		t.Fatal(err)
	}
	rcv.quiet(t)
	srv.releaseHeld()
	if e := rcv.wait(t, 1)[0]; !e.respond {
		t.Fatalf("held call failed (%v, %v) with the default timeout off", e.reason, e.err)
	}
}

// Withdraw takes back a client's multiplexed calls and leaves the others.
func TestWithdraw(t *testing.T) {
	srv := newServer(t, nil)
	m := upstream.NewManager(zap.NewNop(), upstream.Stats{})
	t.Cleanup(m.Drain)
	pool := m.Pool(srv.addr(), idCodec{protocols.Multiplexed}, upstream.Options{ConnectTimeout: time.Second, MaxConnections: 1})
	gone, stays := newRecorder(), newRecorder()
	for i, r := range []*recorder{gone, stays, gone} {
		if err := sendNow(pool, newCall(r, protocols.KindRequest, uint64(i+1), hold)); err != nil {
			t.Fatal(err)
		}
	}
	got := m.Withdraw(func(c *upstream.Call) bool { return c.Receiver == gone })
	if len(got) != 2 {
		t.Fatalf("withdrew %d calls, want the 2 of the departed client", len(got))
	}
	for _, c := range got {
		c.Release()
	}
	srv.releaseHeld()
	if e := stays.wait(t, 1)[0]; !e.respond {
		t.Fatalf("the other client's call failed: %v %v", e.reason, e.err)
	}
	gone.quiet(t)
}
