package lprpc_test

import (
	"bytes"
	"testing"

	"github.com/metamesh/metamesh/examples/lprpc"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/codectest"
)

func hdrs(kv ...string) []protocols.Header {
	var out []protocols.Header
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, protocols.Header{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

// samples are frames of every kind, as peer's client and server write them.
func samples() (reqs, resps []codectest.Frame) {
	f := func(name string, kind protocols.Kind, fr lprpc.Frame) codectest.Frame {
		return codectest.Frame{Name: name, Bytes: lprpc.AppendFrame(nil, fr), Kind: kind}
	}
	reqs = []codectest.Frame{
		f("request", protocols.KindRequest, lprpc.Frame{ID: 1, Headers: hdrs("service", "echo.example", "method", "Say", "x-tenant", "batch"), Body: []byte("hello")}),
		f("request-no-headers", protocols.KindRequest, lprpc.Frame{ID: 1 << 40, Body: []byte("x")}),
		f("request-duplicate-and-empty", protocols.KindRequest, lprpc.Frame{ID: 1<<64 - 1, Headers: hdrs("service", "s", "k", "", "", "v")}),
		f("oneway", protocols.KindOneway, lprpc.Frame{Flags: lprpc.FlagOneway, ID: 7, Headers: hdrs("service", "log")}),
		f("heartbeat", protocols.KindHeartbeat, lprpc.Frame{Flags: lprpc.FlagHeartbeat, ID: 8}),
		f("request-big-body", protocols.KindRequest, lprpc.Frame{ID: 9, Headers: hdrs("service", "blob"), Body: bytes.Repeat([]byte("0123456789abcdef"), 2048)}),
	}
	resps = []codectest.Frame{
		f("response", protocols.KindResponse, lprpc.Frame{Flags: lprpc.FlagResponse, ID: 1, Headers: hdrs("served-by", "v1"), Body: []byte("v1|hello")}),
		f("error", protocols.KindError, lprpc.Frame{Flags: lprpc.FlagResponse | lprpc.FlagError, ID: 2, Status: lprpc.StatusAppError, Body: []byte("no such user")}),
		f("heartbeat-reply", protocols.KindHeartbeatReply, lprpc.Frame{Flags: lprpc.FlagHeartbeat | lprpc.FlagResponse, ID: 8}),
	}
	return reqs, resps
}

func newCodec() protocols.Codec {
	c, err := lprpc.New([]byte(`{"maxFrameBytes": 65536}`))
	if err != nil {
		panic(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	reqs, resps := samples()
	codectest.Run(t, codectest.Suite{
		New:       newCodec,
		Factory:   lprpc.New,
		Options:   []byte(`{"maxFrameBytes": 65536}`),
		Requests:  reqs,
		Responses: resps,
		Heartbeat: lprpc.AppendFrame(nil, lprpc.Frame{Flags: lprpc.FlagHeartbeat, ID: 99}),
		// A frame header announcing 65537 bytes.
		Oversize: []byte{0, 1, 0, 0, 0x4c, 0x50, 1, 0},
		Mutation: true,
		// Every header is an attribute in both directions.
		Mutable:  func(m *protocols.Message) bool { return m.Kind.IsRequest() || m.Kind.IsResponse() },
		MaxID:    1<<64 - 1,
		Statuses: []uint32{lprpc.StatusUnavailable, lprpc.StatusAppError},
	})
}

func TestRegistered(t *testing.T) {
	c, err := protocols.New(lprpc.Name, []byte(`{"maxFrameBytes": 1024}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Model() != protocols.Multiplexed {
		t.Fatalf("model %v", c.Model())
	}
	for _, bad := range []string{`{"maxFrameBytes": 3}`, `{"maxframebytes": 1024, "x": 1}`, `[]`} {
		if _, err := protocols.New(lprpc.Name, []byte(bad)); err == nil {
			t.Errorf("config %s accepted", bad)
		}
	}
}

// TestEncodeReplacesDuplicates: a set key present twice in the frame is
// written once, in the first one's place; the last setting wins.
func TestEncodeReplacesDuplicates(t *testing.T) {
	c := newCodec()
	frame := lprpc.AppendFrame(nil, lprpc.Frame{ID: 5, Headers: hdrs("a", "1", "k", "x", "b", "2", "k", "y"), Body: []byte("body")})
	var msg protocols.Message
	if n, err := c.Decode(frame, &msg); n != len(frame) || err != nil {
		t.Fatalf("decode = %d, %v", n, err)
	}
	out, err := c.Encode(nil, &msg, 6, hdrs("k", "first", "new", "n", "k", "last"))
	if err != nil {
		t.Fatal(err)
	}
	var got protocols.Message
	if n, err := c.Decode(out, &got); n != len(out) || err != nil {
		t.Fatalf("decode = %d, %v", n, err)
	}
	want := hdrs("a", "1", "k", "last", "b", "2", "new", "n")
	if h := got.Headers.All(); len(h) != len(want) {
		t.Fatalf("headers %q, want %q", h, want)
	}
	for i, h := range got.Headers.All() {
		if h != want[i] {
			t.Fatalf("headers %q, want %q", got.Headers.All(), want)
		}
	}
	if got.ID != 6 || string(lprpc.Body(&got)) != "body" {
		t.Fatalf("ID %d body %q", got.ID, lprpc.Body(&got))
	}
}

func TestDecodeErrors(t *testing.T) {
	c := newCodec()
	good := lprpc.AppendFrame(nil, lprpc.Frame{ID: 1, Headers: hdrs("k", "v")})
	for name, b := range map[string][]byte{
		"bad magic":        append([]byte{0, 0, 0, 16, 'X', 'Y'}, good[6:]...),
		"short length":     {0, 0, 0, 3},
		"bad version":      func() []byte { b := bytes.Clone(good); b[6] = 2; return b }(),
		"bad flags":        func() []byte { b := bytes.Clone(good); b[7] = lprpc.FlagError; return b }(),
		"header overrun":   func() []byte { b := bytes.Clone(good); b[19] = 2; return b }(),
		"key past the end": func() []byte { b := bytes.Clone(good); b[20] = 0xff; return b }(),
	} {
		var msg protocols.Message
		if n, err := c.Decode(b, &msg); err == nil {
			t.Errorf("%s: Decode = %d, nil; want an error", name, n)
		}
	}
}

func TestClassify(t *testing.T) {
	c := newCodec().(protocols.ResponseClassifier)
	for status, want := range map[uint32]protocols.ResponseClass{
		lprpc.StatusNoRoute: protocols.ClassServerError, lprpc.StatusUnavailable: protocols.ClassUnavailable,
		lprpc.StatusOverloaded: protocols.ClassUnavailable, lprpc.StatusAppError: protocols.ClassOK,
		lprpc.StatusDenied: protocols.ClassOK,
	} {
		if got := c.Classify(&protocols.Message{Kind: protocols.KindError, Status: status}); got != want {
			t.Errorf("status %d: class %d, want %d", status, got, want)
		}
	}
}
