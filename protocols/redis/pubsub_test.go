package redis

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// TestSubscriptionsEnded: the stream ends on the confirmation that leaves
// neither channels nor patterns nor shard channels, RESP2 or RESP3.
func TestSubscriptionsEnded(t *testing.T) {
	w := (&Codec{}).NewStreamWatch()
	for i, step := range []struct {
		frame string
		ended bool
	}{
		{"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", false},
		{"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n", true},
		{"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", false},
		{">3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n", false},
		{"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n:0\r\n", false},
		{"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n", false}, // the shard channel is left
		{"*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$1\r\nm\r\n", false},
		{">3\r\n$12\r\nsunsubscribe\r\n$1\r\ns\r\n:0\r\n", true},
		{"*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:1\r\n", false},
		{"+PONG\r\n", false},
		{"*3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n", true},
	} {
		if got := w.Ended(&protocols.Message{Raw: []byte(step.frame)}); got != step.ended {
			t.Errorf("step %d %q: Ended = %v, want %v", i, step.frame, got, step.ended)
		}
	}
}

// TestSessionPubSub: a subscribe starts a stream (with HELLO 3 first for
// a RESP3 client); a RESP2 subscriber may send only what redis-server
// allows; RESET or the stream's end leaves subscriber mode.
func TestSessionPubSub(t *testing.T) {
	c, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := c.(*Codec).NewSession().(*session)
	step := func(req string, want protocols.Verdict, reply string) {
		t.Helper()
		var m protocols.Message
		if _, err := c.Decode([]byte(req), &m); err != nil {
			t.Fatal(err)
		}
		out, v := s.Intercept(nil, &m)
		if v != want || string(out) != reply {
			t.Fatalf("%q: %q, %v; want %q, %v", req, out, v, reply, want)
		}
	}
	step("UNSUBSCRIBE a b\r\n", protocols.Answer, "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
	step("SUBSCRIBE a\r\n", protocols.Stream, "")
	if p := s.Preamble(); p != nil {
		t.Errorf("a RESP2 subscriber's preamble: %d requests, want none", len(p))
	}
	step("GET k\r\n", protocols.Answer, "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
	step("PING\r\n", protocols.Forward, "")
	step("PSUBSCRIBE p*\r\n", protocols.Forward, "")
	step("MULTI\r\n", protocols.Answer, "-ERR metamesh: transactions on a subscribed connection are not supported\r\n")
	step("RESET\r\n", protocols.Abandon, "+RESET\r\n")
	step("GET k\r\n", protocols.Forward, "")
	s.s.Protocol = 3
	step("SUBSCRIBE a\r\n", protocols.Stream, "")
	if p := s.Preamble(); len(p) != 1 || string(p[0].Raw) != string(hello3Frame) {
		t.Errorf("a RESP3 subscriber's preamble: %v, want HELLO 3", p)
	}
	step("GET k\r\n", protocols.Forward, "")
	s.StreamEnded()
	s.s.Protocol = 2
	step("GET k\r\n", protocols.Forward, "")
}
