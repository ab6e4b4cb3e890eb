package dubbo

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

func TestRegistered(t *testing.T) {
	c, err := protocols.New("dubbo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Model() != protocols.Multiplexed {
		t.Errorf("model = %v", c.Model())
	}
}

func TestDecodeKinds(t *testing.T) {
	c := newCodec(t, "")
	req := Request{ID: 9, TwoWay: true, Service: testService, Method: "sayHello", Args: []string{"x"}}
	oneway := req
	oneway.TwoWay = false
	tests := []struct {
		name   string
		frame  []byte
		kind   protocols.Kind
		status uint32
	}{
		{"request", AppendRequest(nil, req), protocols.KindRequest, 0},
		{"oneway", AppendRequest(nil, oneway), protocols.KindOneway, 0},
		{"heartbeat", AppendHeartbeat(nil, 9), protocols.KindHeartbeat, 0},
		{"heartbeat oneway event", frame(flagRequest|flagEvent|2, 0, 9, []byte{'N'}), protocols.KindHeartbeat, 0},
		{"heartbeat other serialization", frame(flagRequest|flagTwoWay|flagEvent|23, 0, 9, []byte("null")), protocols.KindHeartbeat, 0},
		{"heartbeat reply", c.HeartbeatReply(nil, &protocols.Message{ID: 9}), protocols.KindHeartbeatReply, 20},
		{"heartbeat reply bad status", frame(flagEvent|2, 80, 9, []byte{'N'}), protocols.KindHeartbeatReply, 80},
		{"response", AppendResponse(nil, 9, StatusOK, "hi"), protocols.KindResponse, 20},
		{"response other serialization", frame(6, 20, 9, []byte{1, 2, 3}), protocols.KindResponse, 20},
		{"client timeout", AppendResponse(nil, 9, StatusClientTimeout, "t"), protocols.KindError, 30},
		{"server timeout", AppendResponse(nil, 9, StatusServerTimeout, "t"), protocols.KindError, 31},
		{"bad request", AppendResponse(nil, 9, StatusBadRequest, "t"), protocols.KindError, 40},
		{"bad response", AppendResponse(nil, 9, StatusBadResponse, "t"), protocols.KindError, 50},
		{"service not found", AppendResponse(nil, 9, StatusServiceNotFound, "t"), protocols.KindError, 60},
		{"service error", AppendResponse(nil, 9, StatusServiceError, "t"), protocols.KindError, 70},
		{"server error", AppendResponse(nil, 9, StatusServerError, "t"), protocols.KindError, 80},
		{"client error", AppendResponse(nil, 9, StatusClientError, "t"), protocols.KindError, 90},
		{"threadpool exhausted", AppendResponse(nil, 9, StatusThreadpoolExhausted, "t"), protocols.KindError, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Trailing bytes of a next frame are left alone.
			buf := append(append([]byte(nil), tt.frame...), 0xda, 0xbb, 0xc2)
			msg := &protocols.Message{}
			n, err := c.Decode(buf, msg)
			if err != nil || n != len(tt.frame) {
				t.Fatalf("Decode = %d, %v; want %d", n, err, len(tt.frame))
			}
			if msg.Kind != tt.kind || msg.ID != 9 || msg.Status != tt.status {
				t.Errorf("kind %v id %d status %d; want %v 9 %d", msg.Kind, msg.ID, msg.Status, tt.kind, tt.status)
			}
			if !bytes.Equal(msg.Raw, tt.frame) {
				t.Errorf("Raw is not the frame")
			}
		})
	}
}

func TestDecodeAttributes(t *testing.T) {
	c := newCodec(t, "")
	str := "Ljava/lang/String;"
	tests := []struct {
		name string
		body []byte
		want []protocols.Header
	}{
		{"basic", reqBody("1.0.0", "sayHello", str, hmap(hs("path"), hs(testService), hs("user-id"), hs("u-1")), hs("x")),
			hdrs("service", testService, "interface", testService, "method", "sayHello", "version", "1.0.0", "path", testService, "user-id", "u-1")},
		{"no args no attachments", reqBody("", "ping", "", nil),
			hdrs("service", testService, "interface", testService, "method", "ping")},
		{"null attachments", reqBody("", "ping", "", []byte{'N'}),
			hdrs("service", testService, "interface", testService, "method", "ping")},
		{"version and group from attachments", reqBody("", "m", "", hmap(hs("version"), hs("2.0"), hs("group"), hs("blue"))),
			hdrs("service", testService, "interface", testService, "method", "m", "version", "2.0", "group", "blue")},
		{"null body version", cat(hs("2.0.2"), hs(testService), []byte{'N'}, hs("m"), hs(""), hmap(hs("version"), hs("3"))),
			hdrs("service", testService, "interface", testService, "method", "m", "version", "3")},
		{"body keys win", reqBody("1.0.0", "m", "", hmap(hs("version"), hs("9"), hs("service"), hs("evil"), hs("interface"), hs("i"), hs("method"), hs("x"), hs("Method"), hs("case kept"))),
			hdrs("service", testService, "interface", testService, "method", "m", "version", "1.0.0", "Method", "case kept")},
		{"typed map", reqBody("", "m", "", cat([]byte{'M'}, hs("java.util.HashMap"), hs("a"), hs("1"), []byte{'Z'})),
			hdrs("service", testService, "interface", testService, "method", "m", "a", "1")},
		{"typed map with type ref", reqBody("", "m", "", cat([]byte{'M', 0x90}, hs("a"), hs("1"), []byte{'Z'})),
			hdrs("service", testService, "interface", testService, "method", "m", "a", "1")},
		{"non-string values skipped", reqBody("", "m", "", hmap(
			hs("timeout"), []byte{0xd5, 0x0b, 0xb8}, // int 3000
			hs("a"), hs("1"),
			hs("nil"), []byte{'N'},
			hs("list"), cat([]byte{0x7a}, hs("x"), hs("y")),
			hs("map"), hmap(hs("k"), hs("v")),
			[]byte{0x91}, hs("int key"),
			hs("b"), hs("2"))),
			hdrs("service", testService, "interface", testService, "method", "m", "a", "1", "b", "2")},
		{"chunked key and value", reqBody("", "m", "", hmap(
			cat([]byte{'R', 0, 2}, []byte("ke"), []byte{0x01, 'y'}), cat([]byte{'R', 0, 1}, []byte("v"), []byte{'S', 0, 2}, []byte("al")))),
			hdrs("service", testService, "interface", testService, "method", "m", "key", "val")},
		{"java surrogate pair", reqBody("", "m", "", hmap(hs("e"), cat([]byte{0x04, 'a'}, []byte{0xed, 0xa0, 0xbd, 0xed, 0xba, 0x80}, []byte{'b'}))),
			hdrs("service", testService, "interface", testService, "method", "m", "e", "a🚀b")},
		{"utf-8 4 bytes", reqBody("", "m", "", hmap(hs("e"), cat([]byte{0x03}, []byte("🚀x")))),
			hdrs("service", testService, "interface", testService, "method", "m", "e", "🚀x")},
		{"string args skipped", reqBody("", "m", str+str, hmap(hs("a"), hs("1")), hs("service"), hs("evil")),
			hdrs("service", testService, "interface", testService, "method", "m", "a", "1")},
		{"many attachments", reqBody("", "m", "", hmap(manyPairs(40)...)),
			append(hdrs("service", testService, "interface", testService, "method", "m"), manyHeaders(40)...)},
		{"big attribute spill", reqBody("", "m", "", hmap(hs("big"), hs(strings.Repeat("z", 3000)))),
			hdrs("service", testService, "interface", testService, "method", "m", "big", strings.Repeat("z", 3000))},
		{"trailing bytes after attachments", cat(reqBody("", "m", "", hmap(hs("a"), hs("1"))), []byte{'N'}),
			hdrs("service", testService, "interface", testService, "method", "m", "a", "1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := frame(reqFlags, 0, 1, tt.body)
			msg := mustDecode(t, c, f)
			if got := msg.Headers.All(); !sameHeaders(got, tt.want) {
				t.Errorf("headers\n got %q\nwant %q", got, tt.want)
			}
			// Headers must not alias the frame.
			for i := range f {
				f[i] = 0
			}
			if got := msg.Headers.All(); !sameHeaders(got, tt.want) {
				t.Errorf("headers changed with the buffer: %q", got)
			}
		})
	}
}

func manyPairs(n int) [][]byte {
	var kv [][]byte
	for i := 0; i < n; i++ {
		kv = append(kv, hs("key"+strings.Repeat("k", i)), hs("v"))
	}
	return kv
}

func manyHeaders(n int) []protocols.Header {
	var h []protocols.Header
	for i := 0; i < n; i++ {
		h = append(h, protocols.Header{Key: "key" + strings.Repeat("k", i), Value: "v"})
	}
	return h
}

// TestHeadersReused checks that a Message decodes many frames in a row
// without keeping headers of the previous one.
func TestHeadersReused(t *testing.T) {
	c := newCodec(t, "")
	msg := &protocols.Message{}
	a := frame(reqFlags, 0, 1, reqBody("", "m", "", hmap(hs("a"), hs("1"), hs("b"), hs("2"))))
	b := AppendResponse(nil, 1, StatusOK, "x")
	for _, f := range [][]byte{a, b, a} {
		if _, err := c.Decode(f, msg); err != nil {
			t.Fatal(err)
		}
	}
	if msg.Headers.Len() != 5 {
		t.Errorf("headers %q", msg.Headers.All())
	}
	if _, err := c.Decode(b, msg); err != nil || msg.Headers.Len() != 0 {
		t.Errorf("response headers %q, %v", msg.Headers.All(), err)
	}
}

func TestTruncatedNeverErrors(t *testing.T) {
	c := newCodec(t, "")
	frames := [][]byte{
		AppendRequest(nil, Request{ID: 1, TwoWay: true, Service: testService, Method: "m", Args: []string{"a", "b"},
			Attachments: hdrs("k", "v")}),
		AppendHeartbeat(nil, 2),
		AppendResponse(nil, 3, StatusOK, "value"),
		AppendResponse(nil, 4, StatusServiceError, "boom"),
		frame(reqFlags, 0, 5, reqBody("1", "m", "Ljava/util/Map;", hmap(hs("a"), hs("1")), hmap(hs("k"), []byte{0x70, 0x90}))),
	}
	for _, f := range frames {
		msg := &protocols.Message{}
		for i := 0; i < len(f); i++ {
			if n, err := c.Decode(f[:i], msg); n != 0 || err != nil {
				t.Fatalf("Decode(%d of %d bytes) = %d, %v", i, len(f), n, err)
			}
		}
		if n, err := c.Decode(f, msg); n != len(f) || err != nil {
			t.Fatalf("Decode(whole) = %d, %v", n, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	c := newCodec(t, `{"maxFrameBytes": 1000}`)
	head := func(bodyLen int32) []byte {
		b := appendHeader(nil, reqFlags, 0, 1)
		b[12], b[13], b[14], b[15] = byte(bodyLen>>24), byte(bodyLen>>16), byte(bodyLen>>8), byte(bodyLen)
		return b
	}
	str := "Ljava/lang/String;"
	deep := cat(bytes.Repeat([]byte{0x79}, 70), []byte{'N'})
	tests := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"bad magic 1 byte", []byte{0x00}, "bad magic"},
		{"bad magic 2nd byte", []byte{0xda, 0xbc}, "bad magic"},
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), "bad magic"},
		{"over limit from header alone", head(1001), "body length 1001 exceeds limit 1000"},
		{"negative body length", head(-1), "negative body length"},
		{"empty body", head(0), "empty body"},
		{"non-hessian2 request", frame(flagRequest|flagTwoWay|6, 0, 1, []byte{1}), "serialization id 6"},
		{"body not a string", frame(reqFlags, 0, 1, []byte{0x91}), "expected the dubbo version"},
		{"method not a string", frame(reqFlags, 0, 1, hs("2.0.2"), hs("s"), hs("v"), []byte{0x91}), "expected the method name"},
		{"string past body", frame(reqFlags, 0, 1, []byte{0x05, 'a'}), "past the end"},
		{"missing args", frame(reqFlags, 0, 1, reqBody("", "m", str+str, nil, hs("x"))), "past the end"},
		{"attachments not a map", frame(reqFlags, 0, 1, reqBody("", "m", "", hs("x"))), "not a map"},
		{"unterminated map", frame(reqFlags, 0, 1, reqBody("", "m", "", []byte{'H'})), "past the end"},
		{"odd map", frame(reqFlags, 0, 1, reqBody("", "m", "", []byte{'H', 0x91, 'Z'})), "unexpected tag 0x5a"},
		{"bad utf-8", frame(reqFlags, 0, 1, reqBody("", "m", "", nil), []byte{'H', 0x01, 0x80, 'N', 'Z'}), "bad UTF-8"},
		{"reserved tag", frame(reqFlags, 0, 1, reqBody("", "m", "I", nil, []byte{0x40})), "unexpected tag 0x40"},
		{"undefined class", frame(reqFlags, 0, 1, reqBody("", "m", "I", nil, []byte{0x61})), "undefined class 1"},
		{"too deep", frame(reqFlags, 0, 1, reqBody("", "m", "I", nil, deep)), "nested deeper than 64"},
		{"huge list count", frame(reqFlags, 0, 1, reqBody("", "m", "I", nil, []byte{'X', 'I', 0x7f, 0xff, 0xff, 0xff})), "count 2147483647 out of range"},
		{"negative list count", frame(reqFlags, 0, 1, reqBody("", "m", "I", nil, []byte{'X', 0x8f})), "count -1 out of range"},
		{"bad chunk continuation", frame(reqFlags, 0, 1, reqBody("", "m", "I", nil, []byte{'R', 0, 1, 'a', 0x91})), "expected a string chunk"},
		{"bad binary continuation", frame(reqFlags, 0, 1, reqBody("", "m", "I", nil, []byte{'A', 0, 1, 'a', 0x91})), "expected a binary chunk"},
		{"bad type", frame(reqFlags, 0, 1, reqBody("", "m", "I", nil, []byte{'V', 'T'})), "expected an int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := &protocols.Message{}
			n, err := c.Decode(tt.frame, msg)
			if err == nil || n != 0 {
				t.Fatalf("Decode = %d, %v; want an error", n, err)
			}
			if !strings.HasPrefix(err.Error(), "dubbo: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want it to contain %q", err, tt.want)
			}
			if msg.Kind != 0 || msg.Headers.Len() != 0 {
				t.Errorf("message not reset after an error: %v %q", msg.Kind, msg.Headers.All())
			}
		})
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg     string
		wantMax int64
		wantErr string
	}{
		{"", DefaultMaxBodyBytes, ""},
		{"  ", DefaultMaxBodyBytes, ""},
		{"null", DefaultMaxBodyBytes, ""},
		{"{}", DefaultMaxBodyBytes, ""},
		{`{"maxFrameBytes": 1024}`, 1024, ""},
		{`{"maxFrameBytes": 0}`, 0, "maxFrameBytes must be positive"},
		{`{"maxFrameBytes": -5}`, 0, "maxFrameBytes must be positive"},
		{`{"maxFrameBytes": "big"}`, 0, "maxFrameBytes"},
		{`{"maxFrameBytes": 1.5}`, 0, "maxFrameBytes"},
		{`{"maxFramebytes": 10}`, 0, `unknown field "maxFramebytes"`},
		{`{"timeout": 10}`, 0, `unknown field "timeout"`},
		{`{} {}`, 0, "after the JSON object"},
		{`[1]`, 0, "dubbo: config"},
		{`{`, 0, "dubbo: config"},
	}
	for _, tt := range tests {
		t.Run(tt.cfg, func(t *testing.T) {
			c, err := New([]byte(tt.cfg))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "dubbo: ") {
					t.Fatalf("error %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.(*Codec).maxBody; got != tt.wantMax {
				t.Errorf("max %d; want %d", got, tt.wantMax)
			}
		})
	}
}

func TestLimitIsInclusive(t *testing.T) {
	f := AppendResponse(nil, 1, StatusOK, "abc")
	body := int64(len(f) - headerLen)
	if _, err := newCodec(t, `{"maxFrameBytes": `+strconv.FormatInt(body, 10)+`}`).Decode(f, &protocols.Message{}); err != nil {
		t.Errorf("a body at the limit: %v", err)
	}
	if _, err := newCodec(t, `{"maxFrameBytes": `+strconv.FormatInt(body-1, 10)+`}`).Decode(f, &protocols.Message{}); err == nil {
		t.Errorf("a body over the limit decoded")
	}
}

func TestClassify(t *testing.T) {
	c := newCodec(t, "")
	for _, tc := range []struct {
		frame []byte
		want  protocols.ResponseClass
	}{
		{AppendResponse(nil, 1, StatusOK, "fine"), protocols.ClassOK},
		{AppendResponse(nil, 1, StatusThreadpoolExhausted, "busy"), protocols.ClassUnavailable},
		{AppendResponse(nil, 1, StatusServerError, "boom"), protocols.ClassServerError},
		{AppendResponse(nil, 1, StatusServerTimeout, "slow"), protocols.ClassServerError},
		{AppendResponse(nil, 1, StatusServiceNotFound, "who"), protocols.ClassOK},
		{AppendResponse(nil, 1, StatusBadRequest, "bad"), protocols.ClassOK},
	} {
		var m protocols.Message
		if _, err := c.Decode(tc.frame, &m); err != nil {
			t.Fatal(err)
		}
		if got := protocols.Classify(c, &m); got != tc.want {
			t.Errorf("status %d: class %d, want %d", m.Status, got, tc.want)
		}
	}
}
