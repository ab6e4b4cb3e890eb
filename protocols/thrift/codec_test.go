package thrift

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/metamesh/metamesh/protocols"
)

func TestRegistered(t *testing.T) {
	c, err := protocols.New(Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Model() != protocols.Multiplexed {
		t.Errorf("model = %v", c.Model())
	}
}

func TestConfig(t *testing.T) {
	good := []string{``, `null`, `{}`, `{"transport":"auto","protocol":"auto"}`,
		`{"transport":"header","protocol":"compact","maxFrameBytes":1024}`, `{"transport":"unframed","protocol":"binary"}`,
		`{"onewayMethods":["fire","Admin:log"],"upstream":"exclusive"}`, `{"upstream":"multiplexed","onewayMethods":[]}`}
	for _, cfg := range good {
		if _, err := New([]byte(cfg)); err != nil {
			t.Errorf("New(%s): %v", cfg, err)
		}
	}
	bad := map[string]string{
		`{"transprot":"auto"}`:         `unknown field "transprot"`,
		`{"MaxFrameBytes":1}`:          `unknown field "MaxFrameBytes"`,
		`{"transport":"http"}`:         "transport",
		`{"protocol":"json"}`:          "protocol",
		`{"maxFrameBytes":0}`:          "maxFrameBytes",
		`{"maxFrameBytes":"1"}`:        "maxFrameBytes",
		`{"transport":"auto"} {}`:      "invalid character",
		`[1]`:                          "config",
		`{"onewayMethods":[""]}`:       "onewayMethods[0]",
		`{"onewayMethods":["a",":b"]}`: "onewayMethods[1]",
		`{"onewayMethods":"fire"}`:     "onewayMethods",
		`{"upstream":"pipelined"}`:     "upstream",
	}
	for cfg, want := range bad {
		_, err := New([]byte(cfg))
		if err == nil || !strings.HasPrefix(err.Error(), "thrift: config: ") || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%s) = %v; want an error naming %q", cfg, err, want)
		}
	}
}

var messageTypes = []struct {
	typ    thrift.TMessageType
	kind   protocols.Kind
	status uint32
}{
	{thrift.CALL, protocols.KindRequest, 0},
	{thrift.ONEWAY, protocols.KindOneway, 0},
	{thrift.REPLY, protocols.KindResponse, 0},
	{thrift.EXCEPTION, protocols.KindError, thrift.PROTOCOL_ERROR},
}

func TestDecodeCombos(t *testing.T) {
	c := newCodec(t, "")
	for _, cb := range combos {
		for _, mt := range messageTypes {
			for _, svc := range []string{"", "Greeter"} {
				name := fmt.Sprintf("%v/%v/%q", cb, mt.kind, svc)
				t.Run(name, func(t *testing.T) {
					m := call{service: svc, method: "sayHello", typ: mt.typ, seq: 77}
					if cb.trans == "header" {
						m.headers = map[string]string{"X-User-Id": "u-1", "batchjob": "true", "method": "shadowed"}
					}
					frame := build(t, cb, m)
					// Trailing bytes of a next frame are left alone.
					buf := append(append([]byte(nil), frame...), 0, 0)
					msg := &protocols.Message{}
					n, err := c.Decode(buf, msg)
					if err != nil || n != len(frame) {
						t.Fatalf("Decode = %d, %v; want %d", n, err, len(frame))
					}
					if msg.Kind != mt.kind || msg.ID != 77 || msg.Status != mt.status || !bytes.Equal(msg.Raw, frame) {
						t.Fatalf("kind %v id %d status %d; want %v 77 %d", msg.Kind, msg.ID, msg.Status, mt.kind, mt.status)
					}
					if !mt.kind.IsRequest() {
						if msg.Headers.Len() != 0 {
							t.Fatalf("response attributes %v", msg.Headers.All())
						}
						return
					}
					want := map[string]string{"method": "sayHello", "message_type": "call"}
					if mt.typ == thrift.ONEWAY {
						want["message_type"] = "oneway"
					}
					if svc != "" {
						want["service"] = svc
					}
					if cb.trans == "header" {
						want["X-User-Id"], want["batchjob"] = "u-1", "true"
					}
					got := map[string]string{}
					for _, h := range msg.Headers.All() {
						got[h.Key] = h.Value
					}
					if fmt.Sprint(got) != fmt.Sprint(want) || msg.Headers.Len() != len(want) {
						t.Fatalf("attributes %v; want %v", msg.Headers.All(), want)
					}
				})
			}
		}
	}
}

func TestHeadersDoNotAliasBuf(t *testing.T) {
	c := newCodec(t, "")
	frame := build(t, combo{"header", "strict", false}, call{service: "S", method: "m", typ: thrift.CALL, headers: map[string]string{"k": "v"}})
	msg := decode(t, c, frame)
	clear(frame)
	if header(msg, "service") != "S" || header(msg, "method") != "m" || header(msg, "k") != "v" {
		t.Fatalf("attributes changed with the buffer: %v", msg.Headers.All())
	}
}

func TestSplitAtEveryByte(t *testing.T) {
	c := newCodec(t, "")
	for _, cb := range combos {
		t.Run(cb.String(), func(t *testing.T) {
			frame := build(t, cb, call{service: "Greeter", method: "sayHello", typ: thrift.CALL, seq: 5, headers: map[string]string{"a": "b"}})
			msg := &protocols.Message{}
			for i := range len(frame) {
				if n, err := c.Decode(frame[:i:i], msg); n != 0 || err != nil {
					t.Fatalf("Decode of %d/%d bytes = %d, %v", i, len(frame), n, err)
				}
			}
			decode(t, c, frame)
		})
	}
}

func TestSeveralFramesInOneBuffer(t *testing.T) {
	c := newCodec(t, "")
	for _, cb := range combos {
		t.Run(cb.String(), func(t *testing.T) {
			var buf []byte
			for i := range 3 {
				buf = append(buf, build(t, cb, call{method: fmt.Sprint("m", i), typ: thrift.CALL, seq: int32(i)})...)
			}
			msg := &protocols.Message{}
			for i := range 3 {
				n, err := c.Decode(buf, msg)
				if err != nil || n == 0 || msg.ID != uint64(i) || header(msg, "method") != fmt.Sprint("m", i) {
					t.Fatalf("frame %d: Decode = %d, %v, id %d, %v", i, n, err, msg.ID, msg.Headers.All())
				}
				buf = buf[n:]
			}
			if len(buf) != 0 {
				t.Fatalf("%d bytes left", len(buf))
			}
		})
	}
}

func TestPinnedConfig(t *testing.T) {
	framedBinary := build(t, combo{"framed", "strict", false}, call{method: "m", typ: thrift.CALL})
	headerCompact := build(t, combo{"header", "compact", false}, call{method: "m", typ: thrift.CALL})
	unframedLax := build(t, combo{"unframed", "lax", false}, call{method: "m", typ: thrift.CALL})
	tests := []struct {
		cfg   string
		frame []byte
		ok    bool
	}{
		{`{"transport":"framed"}`, framedBinary, true},
		{`{"transport":"framed"}`, headerCompact, false},
		{`{"transport":"header"}`, headerCompact, true},
		{`{"transport":"header"}`, framedBinary, false},
		{`{"transport":"unframed"}`, unframedLax, true},
		{`{"transport":"unframed"}`, framedBinary, false},
		{`{"protocol":"compact"}`, headerCompact, true},
		{`{"protocol":"compact"}`, framedBinary, false},
		{`{"protocol":"binary"}`, unframedLax, true},
		{`{"protocol":"binary"}`, headerCompact, false},
	}
	for _, tt := range tests {
		c := newCodec(t, tt.cfg)
		n, err := c.Decode(tt.frame, &protocols.Message{})
		if ok := err == nil && n == len(tt.frame); ok != tt.ok {
			t.Errorf("%s on %x: Decode = %d, %v; want ok=%v", tt.cfg, tt.frame[:8], n, err, tt.ok)
		}
	}
}

func TestOversize(t *testing.T) {
	c := newCodec(t, `{"maxFrameBytes": 64}`)
	big := call{method: strings.Repeat("m", 100), typ: thrift.CALL}
	for _, cb := range combos {
		t.Run(cb.String(), func(t *testing.T) {
			frame := build(t, cb, big)
			var err error
			// The error comes from the header alone, before the body.
			for i := 4; i <= len(frame) && err == nil; i++ {
				_, err = c.Decode(frame[:i], &protocols.Message{})
				if i > 16 && err == nil && !cb.zlib {
					t.Fatalf("no error after %d bytes", i)
				}
			}
			if err == nil || !strings.HasPrefix(err.Error(), "thrift: ") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	// An unframed body that runs past the limit.
	long := build(t, combo{"unframed", "strict", false}, call{method: "m", typ: thrift.CALL})
	long = append(long[:len(long)-1], tString, 0, 9, 0, 0, 1, 0)
	long = append(long, make([]byte, 256)...)
	if _, err := c.Decode(long, &protocols.Message{}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("unframed past the limit: %v", err)
	}
}

func TestGarbage(t *testing.T) {
	c := newCodec(t, "")
	deep := []byte{0x80, 1, 0, 1, 0, 0, 0, 1, 'm', 0, 0, 0, 1}
	for range 100 {
		deep = append(deep, tStruct, 0, 1)
	}
	tests := map[string][]byte{
		"http":                   []byte("GET / HTTP/1.1\r\n\r\n"),
		"bad binary version":     {0x80, 0x02, 0, 1, 0, 0, 0, 0},
		"bad message type":       {0x80, 1, 0, 9, 0, 0, 0, 1, 'm', 0, 0, 0, 1, 0},
		"negative name":          {0x80, 1, 0, 1, 0xff, 0xff, 0xff, 0xff},
		"unknown field type":     {0x80, 1, 0, 1, 0, 0, 0, 1, 'm', 0, 0, 0, 1, 99, 0, 1},
		"negative list":          {0x80, 1, 0, 1, 0, 0, 0, 1, 'm', 0, 0, 0, 1, tList, 0, 1, tI32, 0xff, 0xff, 0xff, 0xff},
		"deep nesting":           deep,
		"tiny frame":             {0, 0, 0, 1, 0, 0, 0, 0},
		"empty frame":            {0, 0, 0, 0, 0, 0, 0, 0},
		"frame without message":  {0, 0, 0, 4, 0x80, 1, 0, 1},
		"framed unknown proto":   {0, 0, 0, 4, 0x42, 1, 0, 1, 9},
		"THeader bad proto id":   {0, 0, 0, 14, 0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0x80, 1},
		"THeader bad transform":  {0, 0, 0, 14, 0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 3, 0, 0x80, 1},
		"THeader header overrun": {0, 0, 0, 12, 0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0, 9, 0, 0},
		"THeader bad zlib":       {0, 0, 0, 14, 0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0x80, 1},
		"THeader proto mismatch": {0, 0, 0, 22, 0x0f, 0xff, 0, 0, 0, 0, 0, 1, 0, 1, 2, 0, 0, 0, 0x80, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		"compact long varint":    {0x82, 0x21, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"lax no type":            {0, 0, 0, 1, 'm', 9, 0, 0, 0, 0, 0},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			msg := &protocols.Message{}
			n, err := c.Decode(b, msg)
			if err == nil || n != 0 || !strings.HasPrefix(err.Error(), "thrift: ") {
				t.Fatalf("Decode = %d, %v; want a thrift: error", n, err)
			}
			if msg.Kind != 0 || msg.Raw != nil {
				t.Fatalf("message not reset: %+v", msg)
			}
		})
	}
}

func TestHeartbeatReplyIsANoOp(t *testing.T) {
	c := newCodec(t, "")
	dst := []byte("x")
	if got := c.HeartbeatReply(dst, &protocols.Message{}); !bytes.Equal(got, dst) {
		t.Fatalf("HeartbeatReply = %q", got)
	}
}

func TestOnewayMethods(t *testing.T) {
	c := newCodec(t, `{"onewayMethods":["fire","Admin:log"]}`)
	cases := []struct {
		service, method string
		kind            protocols.Kind
	}{
		{"", "fire", protocols.KindOneway},
		{"Echo", "fire", protocols.KindOneway},
		{"Admin", "log", protocols.KindOneway},
		{"Echo", "log", protocols.KindRequest},
		{"", "log", protocols.KindRequest},
		{"", "fired", protocols.KindRequest},
	}
	for _, cb := range combos {
		for _, tc := range cases {
			m := decode(t, c, build(t, cb, call{service: tc.service, method: tc.method, typ: thrift.CALL, seq: 7}))
			wantType := "call"
			if tc.kind == protocols.KindOneway {
				wantType = "oneway"
			}
			if m.Kind != tc.kind || header(m, "message_type") != wantType || header(m, "method") != tc.method {
				t.Errorf("%v %s:%s: kind %v, message_type %q, method %q; want %v, %q",
					cb, tc.service, tc.method, m.Kind, header(m, "message_type"), header(m, "method"), tc.kind, wantType)
			}
		}
	}
}

func TestExclusiveModel(t *testing.T) {
	if m := newCodec(t, `{"upstream":"exclusive"}`).Model(); m != protocols.Exclusive {
		t.Errorf("model = %v, want exclusive", m)
	}
}
