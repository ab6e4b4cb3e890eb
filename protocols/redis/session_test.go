package redis

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// txStep is one request of a client and what its session must decide;
// refused, when set, is the proxy refusing the request after the session
// let it through, with the client's pinning after the refusal.
type txStep struct {
	req     []byte
	reply   string // "" for a verdict that sends the request on
	verdict protocols.Verdict
	refused *bool
}

func TestSessionTransactions(t *testing.T) {
	no, yes := false, true
	send := func(req []byte, v protocols.Verdict) txStep { return txStep{req: req, verdict: v} }
	answer := func(req []byte, reply string, v protocols.Verdict) txStep {
		return txStep{req: req, reply: reply, verdict: v}
	}
	refusedPin := func(req []byte, pinned *bool) txStep {
		return txStep{req: req, verdict: protocols.Pin, refused: pinned}
	}
	const abort = "-EXECABORT Transaction discarded because of previous errors.\r\n"
	for _, tc := range []struct {
		name  string
		steps []txStep
	}{
		{"a transaction pins at its first command and unpins at EXEC", []txStep{
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			send(mb("SET", "k", "1"), protocols.Pin),
			send(mb("INCR", "k"), protocols.Forward),
			send(mb("EXEC"), protocols.Unpin),
			send(mb("GET", "k"), protocols.Forward),
		}},
		{"PING and ECHO inside MULTI are queued by the server", []txStep{
			answer(mb("PING"), "+PONG\r\n", protocols.Answer),
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			send(mb("PING"), protocols.Pin),
			send(mb("ECHO", "x"), protocols.Forward),
			send(mb("EXEC"), protocols.Unpin),
			answer(mb("ECHO", "y"), "$1\r\ny\r\n", protocols.Answer),
		}},
		{"a command refused before the pin fails the transaction", []txStep{
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			answer(mb("FLUSHALL"), "-ERR metamesh: command 'flushall' is not supported by the proxy\r\n", protocols.Answer),
			answer(mb("SET", "k", "1"), "+QUEUED\r\n", protocols.Answer),
			answer(mb("EXEC"), abort, protocols.Answer),
			send(mb("SET", "k", "1"), protocols.Forward),
		}},
		{"a command refused after the pin abandons the pinned connection", []txStep{
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			send(mb("SET", "k", "1"), protocols.Pin),
			answer(mb("GET"), "-ERR wrong number of arguments for 'get' command\r\n", protocols.Answer),
			answer(mb("SET", "k", "2"), "+QUEUED\r\n", protocols.Answer),
			answer(mb("EXEC"), abort, protocols.Abandon),
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			send(mb("SET", "k", "1"), protocols.Pin),
		}},
		{"DISCARD of a failed transaction", []txStep{
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			send(mb("SET", "k", "1"), protocols.Pin),
			answer(mb("KEYS", "*"), "-ERR metamesh: command 'keys' is not supported by the proxy\r\n", protocols.Answer),
			answer(mb("DISCARD"), "+OK\r\n", protocols.Abandon),
		}},
		{"the proxy refusing the pinning command leaves the transaction queued and failed", []txStep{
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			refusedPin(mb("SET", "k", "1"), &no),
			answer(mb("SET", "k", "2"), "+QUEUED\r\n", protocols.Answer),
			answer(mb("EXEC"), abort, protocols.Answer),
		}},
		{"the proxy refusing a pinned command fails the transaction", []txStep{
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			send(mb("SET", "k", "1"), protocols.Pin),
			{req: mb("SET", "k", "2"), verdict: protocols.Forward, refused: &yes},
			answer(mb("EXEC"), abort, protocols.Abandon),
		}},
		{"a refused WATCH watches nothing", []txStep{
			refusedPin(mb("WATCH", "k"), &no),
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			send(mb("SET", "k", "1"), protocols.Pin),
			send(mb("EXEC"), protocols.Unpin),
		}},
		{"a watch lost with its connection fails the next transaction", []txStep{
			send(mb("WATCH", "k"), protocols.Pin),
			{req: mb("GET", "k"), verdict: protocols.Forward, refused: &no},
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			answer(mb("SET", "k", "1"), "+QUEUED\r\n", protocols.Answer),
			answer(mb("EXEC"), abort, protocols.Answer),
			answer(mb("MULTI"), "+OK\r\n", protocols.Answer),
			send(mb("SET", "k", "1"), protocols.Pin),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCodec(t, "")
			s := c.NewSession()
			for i, st := range tc.steps {
				out, v := s.Intercept(nil, decodeReq(t, c, st.req))
				if string(out) != st.reply || v != st.verdict {
					t.Fatalf("step %d (%q): %q, verdict %d; want %q, verdict %d", i, st.req, out, v, st.reply, st.verdict)
				}
				if st.refused != nil {
					s.(protocols.RefusalListener).Refused(*st.refused)
				}
			}
		})
	}
}

func TestSessionDatabase(t *testing.T) {
	c := newCodec(t, `{"databases": 4}`)
	s := c.NewSession()
	uv := s.(protocols.UpstreamVariant)
	intercept := func(req []byte, want string) {
		t.Helper()
		var m protocols.Message
		if _, err := c.Decode(req, &m); err != nil {
			t.Fatal(err)
		}
		if out, _ := s.Intercept(nil, &m); string(out) != want {
			t.Fatalf("%q: %q, want %q", req, out, want)
		}
	}
	if uv.UpstreamCodec() != c {
		t.Fatal("database 0 does not use the codec itself")
	}
	intercept(mb("SELECT", "3"), "+OK\r\n")
	if got := uv.UpstreamCodec(); got != c.Variant(false, 3) {
		t.Fatalf("after SELECT 3: %v", got)
	}
	out, n := c.Variant(false, 3).(*Codec).Handshake(nil)
	if string(out) != string(mb("SELECT", "3")) || n != 1 {
		t.Errorf("handshake of database 3: %q, %d", out, n)
	}
	intercept(mb("SELECT", "4"), "-ERR DB index is out of range\r\n")
	intercept(mb("RESET"), "+RESET\r\n")
	if uv.UpstreamCodec() != c {
		t.Fatal("RESET kept the database")
	}
	if _, err := New([]byte(`{"databases": 0}`)); err == nil {
		t.Error("databases 0 accepted")
	}
}
