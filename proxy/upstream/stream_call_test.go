package upstream_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// streamServer answers "stream N" with N parts (responses with More) and
// a last response, and "hold" with one part, then the last response once
// release is closed; anything else with one response. It serves one
// connection's requests in turn.
func streamServer(t *testing.T) *server {
	return newServer(t, func(s *server) { s.streams = true })
}

// TestStreamedResponseParts: every part of a streamed response reaches
// the call's receiver in order and leaves the call waiting; the last one
// ends it; calls on the same connection are answered meanwhile.
func TestStreamedResponseParts(t *testing.T) {
	srv := streamServer(t)
	pool, st := newPool(t, srv.addr(), protocols.Multiplexed, 1)
	rcv := newRecorder()
	const parts = 50
	s := newCall(rcv, protocols.KindRequest, 7, fmt.Sprintf("stream %d", parts))
	u := newCall(rcv, protocols.KindRequest, 7, "unary")
	for _, c := range []*upstream.Call{s, u} {
		if err := sendNow(pool, c); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	unary := 0
	for _, e := range rcv.wait(t, parts+2) {
		if !e.respond {
			t.Fatalf("a call failed: %v", e.err)
		}
		switch e.call {
		case s:
			got = append(got, e.payload)
		case u:
			unary++
		default:
			t.Fatalf("outcome for an unknown call: %+v", e)
		}
	}
	rcv.quiet(t)
	if unary != 1 {
		t.Errorf("the unary call got %d responses, want 1", unary)
	}
	if len(got) != parts+1 {
		t.Fatalf("the streaming call got %d responses, want %d", len(got), parts+1)
	}
	for i, p := range got[:parts] {
		if want := fmt.Sprintf("part %d", i); p != want {
			t.Fatalf("response %d is %q, want %q (in order)", i, p, want)
		}
	}
	if got[parts] != "end" {
		t.Errorf("last response %q, want \"end\"", got[parts])
	}
	if n := st.unknown.Load(); n != 0 {
		t.Errorf("%d responses paired with no call", n)
	}
	// The ended call left its connection: a late part pairs with nothing.
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestStreamingCallOutlivesDefaultTimeout: the default timeout fails a
// call that got no answer, not one whose answer is streaming.
func TestStreamingCallOutlivesDefaultTimeout(t *testing.T) {
	srv := streamServer(t)
	st := &stats{}
	m := upstream.NewManager(zap.NewNop(), st.hooks())
	t.Cleanup(m.Drain)
	m.SetDefaultTimeout(20 * time.Millisecond)
	pool := m.Pool(srv.addr(), idCodec{protocols.Multiplexed}, upstream.Options{ConnectTimeout: time.Second, MaxConnections: 1})
	rcv := newRecorder()
	s := newCall(rcv, protocols.KindRequest, 1, hold)
	if err := sendNow(pool, s); err != nil {
		t.Fatal(err)
	}
	if e := rcv.wait(t, 1)[0]; e.call != s || !e.respond || e.payload != "part 0" {
		t.Fatalf("first outcome %+v, want the streaming call's first part", e)
	}
	// A call behind it on the connection gets nothing (the server holds
	// the stream) and times out: the sweep ran past the streaming call,
	// which is older.
	u := newCall(rcv, protocols.KindRequest, 2, "unary")
	if err := sendNow(pool, u); err != nil {
		t.Fatal(err)
	}
	if e := rcv.wait(t, 1)[0]; e.call != u || e.respond || e.reason != protocols.ReasonTimeout {
		t.Fatalf("outcome %+v, want the unanswered call's timeout", e)
	}
	rcv.quiet(t)
	srv.releaseHeld()
	if e := rcv.wait(t, 1)[0]; e.call != s || !e.respond || e.payload != "end" {
		t.Fatalf("outcome %+v, want the streaming call's last response", e)
	}
}

// blockingReceiver holds its first Respond until release is closed,
// telling entered once it is inside, and records every outcome.
type blockingReceiver struct {
	*recorder
	entered, release chan struct{}
	first            bool
}

func (r *blockingReceiver) Respond(c *upstream.Call, m *protocols.Message, b *wire.Batch) {
	if !r.first {
		r.first = true
		close(r.entered)
		<-r.release
	}
	r.recorder.Respond(c, m, b)
}

// sendHeld sends a "hold" call on pool whose receiver blocks in its
// first part's delivery, and returns once it is inside.
func sendHeld(t *testing.T, pool *upstream.Pool) (*blockingReceiver, *upstream.Call) {
	t.Helper()
	rcv := &blockingReceiver{recorder: newRecorder(), entered: make(chan struct{}), release: make(chan struct{})}
	s := newCall(rcv, protocols.KindRequest, 1, hold)
	if err := sendNow(pool, s); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rcv.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first part never reached the receiver")
	}
	return rcv, s
}

// TestCancelWhileDeliveringPart: a streaming call cancelled while the
// read loop is handing it a part is not taken by the canceller (that
// delivery owns it and releases it when it finds it no longer current),
// and no later part reaches it.
func TestCancelWhileDeliveringPart(t *testing.T) {
	srv := streamServer(t)
	pool, st := newPool(t, srv.addr(), protocols.Multiplexed, 1)
	rcv, s := sendHeld(t, pool)
	took, after := upstream.Cancel(s)
	if took {
		t.Fatal("Cancel took a call whose part was being delivered: both would release it")
	}
	if after != nil {
		after()
	}
	close(rcv.release)
	if e := rcv.wait(t, 1)[0]; e.call != s || e.payload != "part 0" {
		t.Fatalf("outcome %+v, want the part being delivered", e)
	}
	srv.releaseHeld()
	eventually(t, "the last response paired with no call", func() bool { return st.unknown.Load() == 1 })
	rcv.quiet(t)
}

// TestWithdrawWhileDeliveringPart: a streaming call whose client went
// away while the read loop hands it a part is not returned by Withdraw
// (that delivery owns it), but withdrawn once the part is handed over:
// its receiver's Fail gets ErrClientGone, and no later part reaches it.
func TestWithdrawWhileDeliveringPart(t *testing.T) {
	srv := streamServer(t)
	st := &stats{}
	m := upstream.NewManager(zap.NewNop(), st.hooks())
	t.Cleanup(m.Drain)
	pool := m.Pool(srv.addr(), idCodec{protocols.Multiplexed}, upstream.Options{ConnectTimeout: time.Second, MaxConnections: 1})
	rcv, s := sendHeld(t, pool)
	if got := m.Withdraw(func(c *upstream.Call) bool { return c == s }); len(got) != 0 {
		t.Fatalf("Withdraw returned %d calls, one of them with a part being delivered: both would end it", len(got))
	}
	close(rcv.release)
	if e := rcv.wait(t, 1)[0]; e.call != s || !e.respond || e.payload != "part 0" {
		t.Fatalf("outcome %+v, want the part being delivered", e)
	}
	if e := rcv.wait(t, 1)[0]; e.call != s || e.respond || !errors.Is(e.err, upstream.ErrClientGone) {
		t.Fatalf("outcome %+v, want the call failed with ErrClientGone once its part was delivered", e)
	}
	srv.releaseHeld()
	eventually(t, "the last response paired with no call", func() bool { return st.unknown.Load() == 1 })
	rcv.quiet(t)
}

// TestDepartStreamWhileDeliveringPart: a streaming call whose client
// reset its stream while the read loop hands it a part is not taken by
// DepartStream (that delivery owns it), and is ended by that delivery
// once the part is handed over: its receiver's Fail gets
// ErrStreamCancelled, and no later part reaches it.
func TestDepartStreamWhileDeliveringPart(t *testing.T) {
	srv := streamServer(t)
	pool, st := newPool(t, srv.addr(), protocols.Multiplexed, 1)
	rcv, s := sendHeld(t, pool)
	var b wire.Batch
	took, after := upstream.DepartStream(s, &b)
	b.Flush()
	if took {
		t.Fatal("DepartStream took a call whose part was being delivered: both would end it")
	}
	if after != nil {
		after()
	}
	close(rcv.release)
	if e := rcv.wait(t, 1)[0]; e.call != s || !e.respond || e.payload != "part 0" {
		t.Fatalf("outcome %+v, want the part being delivered", e)
	}
	if e := rcv.wait(t, 1)[0]; e.call != s || e.respond || !errors.Is(e.err, upstream.ErrStreamCancelled) {
		t.Fatalf("outcome %+v, want the call failed with ErrStreamCancelled once its part was delivered", e)
	}
	srv.releaseHeld()
	eventually(t, "the last response paired with no call", func() bool { return st.unknown.Load() == 1 })
	rcv.quiet(t)
}
