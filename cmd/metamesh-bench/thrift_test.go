package main

import (
	"context"
	"strings"
	"testing"

	athrift "github.com/apache/thrift/lib/go/thrift"

	"github.com/metamesh/metamesh/protocols"
)

// libraryProto is apache/thrift's framed strict-binary stack over mem,
// what the thrift-server runs.
func libraryProto(mem athrift.TTransport) (athrift.TProtocol, athrift.TTransport) {
	conf := &athrift.TConfiguration{}
	framed := athrift.NewTFramedTransportConf(mem, conf)
	return athrift.NewTBinaryProtocolConf(framed, conf), framed
}

// The hand-built call is what the library reads as echo(msg).
func TestThriftCallReadByLibrary(t *testing.T) {
	ctx := context.Background()
	for _, arg := range []string{"", "hello", strings.Repeat("x", 70000)} {
		mem := athrift.NewTMemoryBuffer()
		if _, err := mem.Write(appendThriftMessage(nil, thriftCall, echoMethod, 0x89abcdef, 1, arg)); err != nil {
			t.Fatal(err)
		}
		p, _ := libraryProto(mem)
		name, typ, seq, err := p.ReadMessageBegin(ctx)
		if err != nil || name != echoMethod || typ != athrift.CALL || seq != int32(-0x76543211) {
			t.Fatalf("message begin: %q %v %d %v", name, typ, seq, err)
		}
		if _, err := p.ReadStructBegin(ctx); err != nil {
			t.Fatal(err)
		}
		_, ftyp, fid, err := p.ReadFieldBegin(ctx)
		if err != nil || ftyp != athrift.STRING || fid != 1 {
			t.Fatalf("field: type %v id %d %v", ftyp, fid, err)
		}
		got, err := p.ReadString(ctx)
		if err != nil || got != arg {
			t.Fatalf("msg: %d bytes, want %d: %v", len(got), len(arg), err)
		}
		if err := p.ReadFieldEnd(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ftyp, _, err := p.ReadFieldBegin(ctx); err != nil || ftyp != athrift.STOP {
			t.Fatalf("after msg: type %v %v", ftyp, err)
		}
		if mem.Len() != 0 {
			t.Errorf("%d bytes left", mem.Len())
		}
	}
}

// libraryReply writes what the thrift-server writes for echo: a result
// struct with the success string, or a TApplicationException.
func libraryReply(t *testing.T, seq int32, success string, exc athrift.TApplicationException) []byte {
	t.Helper()
	ctx := context.Background()
	mem := athrift.NewTMemoryBuffer()
	p, framed := libraryProto(mem)
	typ := athrift.REPLY
	if exc != nil {
		typ = athrift.EXCEPTION
	}
	err := p.WriteMessageBegin(ctx, echoMethod, typ, seq)
	if err == nil && exc != nil {
		err = exc.Write(ctx, p)
	} else if err == nil {
		for _, step := range []func() error{
			func() error { return p.WriteStructBegin(ctx, "echo_result") },
			func() error { return p.WriteFieldBegin(ctx, "success", athrift.STRING, 0) },
			func() error { return p.WriteString(ctx, success) },
			func() error { return p.WriteFieldEnd(ctx) },
			func() error { return p.WriteFieldStop(ctx) },
			func() error { return p.WriteStructEnd(ctx) },
		} {
			if err = step(); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = p.WriteMessageEnd(ctx)
	}
	if err == nil {
		err = framed.Flush(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return mem.Bytes()
}

func TestThriftEchoValue(t *testing.T) {
	good := libraryReply(t, 7, "v1|hello", nil)
	if v, err := thriftEchoValue(good); err != nil || v != "v1|hello" {
		t.Fatalf("library reply: %q, %v", v, err)
	}
	if own := appendThriftMessage(nil, thriftReply, echoMethod, 7, 0, "v1|hello"); string(own) != string(good) {
		t.Errorf("own reply\n%x\nlibrary's\n%x", own, good)
	}
	if v, err := thriftEchoValue(libraryReply(t, 1, "", nil)); err != nil || v != "" {
		t.Errorf("empty success: %q, %v", v, err)
	}

	patched := func(edit func(b []byte) []byte) []byte { return edit(append([]byte(nil), good...)) }
	for name, tc := range map[string]struct {
		frame []byte
		want  string
	}{
		"exception": {
			libraryReply(t, 7, "", athrift.NewTApplicationException(athrift.INTERNAL_ERROR, "boom")),
			"TApplicationException type 6: boom",
		},
		"call": {appendThriftMessage(nil, thriftCall, echoMethod, 7, 0, "v1|hello"), "not a reply"},
		"other method": {
			appendThriftMessage(nil, thriftReply, "ping", 7, 0, "v1|hello"), `method "ping"`,
		},
		"no success":     {appendThriftMessage(nil, thriftReply, echoMethod, 7, 1, "v1|hello"), "without a success value"},
		"lax binary":     {patched(func(b []byte) []byte { b[4] = 0; return b }), "not strict binary"},
		"length too big": {patched(func(b []byte) []byte { b[3]++; return b }), "not one whole thrift frame"},
		"struct field":   {patched(func(b []byte) []byte { b[20] = 12; return b }), "field 0 has type 12"},
		"trailing bytes": {
			patched(func(b []byte) []byte { b[3]++; return append(b, 0) }), "1 bytes after the struct",
		},
	} {
		_, err := thriftEchoValue(tc.frame)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}

	// Every truncation, with its frame length fixed to match, is an error.
	for n := 4; n < len(good); n++ {
		b := append([]byte(nil), good[:n]...)
		b[3] = byte(n - 4)
		if v, err := thriftEchoValue(b); err == nil {
			t.Errorf("truncated to %d bytes: %q, no error", n, v)
		}
	}
}

// The codec the bench decodes replies with sees the hand-built frames as
// the proxy will: a call to echo and a reply, with the seqid as ID.
func TestThriftFramesDecode(t *testing.T) {
	codec, err := thriftWorkload.newCodec()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ  byte
		kind protocols.Kind
	}{{thriftCall, protocols.KindRequest}, {thriftReply, protocols.KindResponse}} {
		frame := appendThriftMessage(nil, tc.typ, echoMethod, 0xfffffffe, 1, "abc")
		var m protocols.Message
		n, err := codec.Decode(frame, &m)
		if err != nil || n != len(frame) || m.Kind != tc.kind || m.ID != 0xfffffffe {
			t.Fatalf("type %d: decoded %d of %d bytes, kind %s, id %d, %v", tc.typ, n, len(frame), m.Kind, m.ID, err)
		}
		if method, _ := m.Headers.Get("method"); tc.kind == protocols.KindRequest && method != echoMethod {
			t.Errorf("method %q", method)
		}
	}
}
