package redis

import (
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

func TestLocal(t *testing.T) {
	type step struct {
		req    []byte
		want   string // reply; "" means Forward
		action Action
	}
	ok := func(req []byte, want string) step { return step{req, want, Replied} }
	fwd := func(req []byte) step { return step{req, "", Forward} }
	helloMap2 := "*14\r\n$6\r\nserver\r\n$8\r\nmetamesh\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:0\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
	helloMap3 := "%7" + strings.Replace(strings.TrimPrefix(helloMap2, "*14"), ":2", ":3", 1)
	for _, tc := range []struct {
		name, cfg string
		steps     []step
		session   Session
	}{
		{"ping echo quit", "", []step{
			ok(mb("PING"), "+PONG\r\n"),
			ok([]byte("PING\r\n"), "+PONG\r\n"),
			ok(mb("ping", "hi"), "$2\r\nhi\r\n"),
			ok(mb("PING", "a", "b"), "-ERR wrong number of arguments for 'ping' command\r\n"),
			ok(mb("ECHO", "x y"), "$3\r\nx y\r\n"),
			ok(mb("ECHO"), "-ERR wrong number of arguments for 'echo' command\r\n"),
			{mb("QUIT"), "+OK\r\n", ReplyAndClose},
		}, Session{}},
		{"forwarded and refused", "", []step{
			fwd(mb("GET", "k")),
			fwd(mb("MGET", "a", "b")),
			fwd(mb("MULTI")),
			fwd(mb("BLPOP", "q", "0")),
			ok(mb("GET"), "-ERR wrong number of arguments for 'get' command\r\n"),
			ok(mb("MSET", "a", "1", "b"), "-ERR wrong number of arguments for 'mset' command\r\n"),
			ok(mb("NOPE", "x"), "-ERR metamesh: unknown or unsupported command 'nope'\r\n"),
			ok(mb("KEYS", "*"), "-ERR metamesh: command 'keys' is not supported by the proxy\r\n"),
			ok(mb("CONFIG", "GET", "x"), "-ERR metamesh: command 'config' is not supported by the proxy\r\n"),
			ok(mb("CLIENT", "KILL", "x"), "-ERR metamesh: command 'client kill' is not supported by the proxy\r\n"),
			fwd(mb("SUBSCRIBE", "ch")),
			ok(mb("MONITOR"), "-ERR metamesh: pub/sub command 'monitor' is not supported by the proxy: connect to Redis directly\r\n"),
			ok(mb("N\r\nO'"), "-ERR metamesh: unknown or unsupported command 'n??o?'\r\n"),
		}, Session{}},
		{"select", "", []step{
			ok(mb("SELECT", "0"), "+OK\r\n"),
			ok(mb("SELECT", "15"), "+OK\r\n"),
			ok(mb("SELECT", "16"), "-ERR DB index is out of range\r\n"),
			ok(mb("SELECT", "-1"), "-ERR DB index is out of range\r\n"),
			ok(mb("SELECT", "x"), "-ERR value is not an integer or out of range\r\n"),
		}, Session{DB: 15}},
		{"client names", "", []step{
			ok(mb("CLIENT", "GETNAME"), "$-1\r\n"),
			ok(mb("CLIENT", "SETNAME", "app-1"), "+OK\r\n"),
			ok(mb("CLIENT", "GETNAME"), "$5\r\napp-1\r\n"),
			ok(mb("CLIENT", "SETNAME", "a b"), "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"),
			ok(mb("CLIENT", "SETINFO", "LIB-NAME", "go-redis"), "+OK\r\n"),
			ok(mb("CLIENT", "SETINFO", "other", "x"), "-ERR Unrecognized option 'other'\r\n"),
		}, Session{Name: "app-1"}},
		{"auth without password", "", []step{
			ok(mb("AUTH", "x"), "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"),
			ok(mb("AUTH", "default", "x"), "+OK\r\n"),
			ok(mb("AUTH", "bob", "x"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
		}, Session{Authenticated: true}},
		{"auth with password", `{"password": "s3cret"}`, []step{
			ok(mb("GET", "k"), "-NOAUTH Authentication required.\r\n"),
			ok(mb("PING"), "-NOAUTH Authentication required.\r\n"),
			ok(mb("NOPE"), "-NOAUTH Authentication required.\r\n"),
			ok(mb("HELLO", "2"), "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"),
			ok(mb("AUTH", "wrong"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
			ok(mb("AUTH", "a", "b", "c"), "-ERR syntax error\r\n"),
			ok(mb("AUTH", "s3cret"), "+OK\r\n"),
			fwd(mb("GET", "k")),
			ok(mb("RESET"), "+RESET\r\n"),
			ok(mb("GET", "k"), "-NOAUTH Authentication required.\r\n"),
			ok(mb("AUTH", "default", "s3cret"), "+OK\r\n"),
			{mb("QUIT"), "+OK\r\n", ReplyAndClose},
		}, Session{Authenticated: true}},
		{"auth with user", `{"password": "p", "username": "app"}`, []step{
			ok(mb("AUTH", "p"), "-WRONGPASS invalid username-password pair or user is disabled.\r\n"),
			ok(mb("HELLO", "2", "AUTH", "app", "p", "SETNAME", "n1"), helloMap2),
		}, Session{Protocol: 2, Authenticated: true, Name: "n1"}},
		{"hello resp2 only", "", []step{
			ok(mb("HELLO"), helloMap2),
			ok(mb("HELLO", "3"), "-NOPROTO unsupported protocol version\r\n"),
			ok(mb("HELLO", "x"), "-ERR Protocol version is not an integer or out of range\r\n"),
			ok(mb("HELLO", "2", "FOO"), "-ERR Syntax error in HELLO option 'foo'\r\n"),
			ok(mb("HELLO", "2", "AUTH", "u"), "-ERR Syntax error in HELLO option 'auth'\r\n"),
		}, Session{Protocol: 2}},
		{"hello resp3", `{"resp3": true}`, []step{
			ok(mb("HELLO", "3"), helloMap3),
			ok(mb("CLIENT", "GETNAME"), "_\r\n"),
			ok(mb("HELLO"), helloMap3),
			ok(mb("HELLO", "4"), "-NOPROTO unsupported protocol version\r\n"),
		}, Session{Protocol: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCodec(t, tc.cfg)
			var s Session
			for i, st := range tc.steps {
				msg := decodeReq(t, c, st.req)
				got, act := c.Local([]byte("prefix"), &s, msg)
				if !strings.HasPrefix(string(got), "prefix") {
					t.Fatalf("step %d: Local did not append to dst", i)
				}
				if string(got[6:]) != st.want || act != st.action {
					t.Fatalf("step %d %q: Local = %q, %v; want %q, %v", i, st.req, got[6:], act, st.want, st.action)
				}
			}
			if s != tc.session {
				t.Fatalf("session %+v, want %+v", s, tc.session)
			}
		})
	}
}

func TestLocalOnForeignMessage(t *testing.T) {
	c := newCodec(t, "")
	got, act := c.Local(nil, &Session{}, &protocols.Message{Raw: []byte("x")})
	if act != Replied || !strings.HasPrefix(string(got), "-ERR metamesh: ") {
		t.Fatalf("Local = %q, %v", got, act)
	}
}

func TestErrorReply(t *testing.T) {
	c := newCodec(t, "")
	for _, tc := range []struct {
		reason protocols.Reason
		text   string
		want   string
	}{
		{protocols.ReasonNoRoute, "", "-ERR metamesh: no route\r\n"},
		{protocols.ReasonNoRoute, "metamesh: no route", "-ERR metamesh: no route\r\n"},
		{protocols.ReasonNoRoute, "metamesh: service redis-a: no route matched", "-ERR metamesh: no route: service redis-a: no route matched\r\n"},
		{protocols.ReasonNoHealthyUpstream, "metamesh: route r: cluster c: dial tcp: refused\r\nx", "-ERR metamesh: no healthy upstream: route r: cluster c: dial tcp: refused  x\r\n"},
		{protocols.ReasonTimeout, "metamesh: route r: cluster c: 2s", "-ERR metamesh: timeout: route r: cluster c: 2s\r\n"},
		{protocols.ReasonRateLimited, "", "-ERR metamesh: rate limited\r\n"},
		{protocols.ReasonOverloaded, "max pending", "-ERR metamesh: rate limited: max pending\r\n"},
		{protocols.ReasonDenied, "metamesh: denied by authorization policy default/p (service s)", "-NOPERM metamesh: denied by authorization policy default/p (service s)\r\n"},
		{protocols.ReasonDenied, "", "-NOPERM metamesh: denied\r\n"},
		{protocols.Reason(99), "", "-ERR metamesh: no healthy upstream\r\n"},
	} {
		got := string(c.ErrorReply(nil, nil, tc.reason, tc.text))
		if got != tc.want {
			t.Errorf("ErrorReply(%v, %q) = %q, want %q", tc.reason, tc.text, got, tc.want)
		}
		var msg protocols.Message
		if n, err := c.DecodeResponse([]byte(got), &msg); err != nil || n != len(got) || msg.Kind != protocols.KindError {
			t.Errorf("error reply %q does not decode as one error: %d, %v", got, n, err)
		}
	}
}

func TestCodecBasics(t *testing.T) {
	c := newCodec(t, "")
	if c.Model() != protocols.Pipelined {
		t.Fatal("model")
	}
	frame := mb("GET", "k")
	msg := decodeReq(t, c, frame)
	out, err := c.Encode([]byte("x"), msg, 42, []protocols.Header{{Key: "a", Value: "b"}})
	if err != nil || string(out) != "x"+string(frame) {
		t.Fatalf("Encode = %q, %v", out, err)
	}
	if _, err := c.Encode(nil, &protocols.Message{}, 0, nil); err == nil {
		t.Fatal("Encode of an empty message succeeded")
	}
	if got := string(c.HeartbeatReply(nil, msg)); got != "+PONG\r\n" {
		t.Fatalf("HeartbeatReply = %q", got)
	}
	if got := string(AppendAuth(nil, "", "pw")); got != string(mb("AUTH", "pw")) {
		t.Fatalf("AppendAuth = %q", got)
	}
	if got := string(AppendAuth(nil, "u", "pw")); got != string(mb("AUTH", "u", "pw")) {
		t.Fatalf("AppendAuth = %q", got)
	}
	if got := string(AppendHello(nil, 3, "", "")); got != string(mb("HELLO", "3")) {
		t.Fatalf("AppendHello = %q", got)
	}
	if got := string(AppendHello(nil, 2, "", "pw")); got != string(mb("HELLO", "2", "AUTH", "default", "pw")) {
		t.Fatalf("AppendHello = %q", got)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []string{"", "null", " {} ", `{"maxFrameBytes": 64, "maxArgs": 1, "password": "p", "username": "u", "resp3": true}`} {
		if _, err := New([]byte(cfg)); err != nil {
			t.Errorf("New(%s): %v", cfg, err)
		}
	}
	for _, tc := range []struct{ cfg, want string }{
		{`{"maxframebytes": 1}`, `unknown field "maxframebytes"`},
		{`{"maxFrameBytes": 10}`, "maxFrameBytes must be"},
		{`{"maxFrameBytes": 4294967296}`, "maxFrameBytes must be"},
		{`{"maxArgs": 0}`, "maxArgs must be"},
		{`{"password": ""}`, "password is empty"},
		{`{"username": "u"}`, "username without a password"},
		{`{"password": "p", "username": "a b"}`, "username"},
		{`{"resp3": "yes"}`, "redis: config"},
		{`{} {}`, "redis: config"},
		{`[`, "redis: config"},
	} {
		if _, err := New([]byte(tc.cfg)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%s) = %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
	if c, err := protocols.New(Name, nil); err != nil || c.Model() != protocols.Pipelined {
		t.Fatalf("registered codec: %v", err)
	}
}
