package triple

import (
	"testing"

	"golang.org/x/net/http2"

	"github.com/metamesh/metamesh/protocols"
)

// TestOwnReplyEndsRelayedStream: the proxy's Trailers-Only reply on a
// stream whose response went out in parts becomes trailers (no
// pseudo-header, no content-type) after a whole message, waits behind
// what is held of the stream, and becomes RST_STREAM CANCEL when it would
// cut a message short. On a stream sent whole before, it is unchanged.
func TestOwnReplyEndsRelayedStream(t *testing.T) {
	c := newCodec().(*Codec)
	req := &protocols.Message{ID: 0}
	reply := func() *protocols.Message {
		return &protocols.Message{Kind: protocols.KindError, Raw: c.ErrorReply(nil, req, protocols.ReasonTimeout, "late")}
	}
	part := func(d *connDecoder, data []byte, first bool) []byte {
		w := getWriter(nil)
		if first {
			w.headers(1, fieldsOf(":status", "200", "content-type", "application/grpc"), false)
		}
		w.data(1, data, false)
		m := &protocols.Message{Kind: protocols.KindResponse, Raw: w.put(), More: true}
		if !first {
			m.Marks[markPart] = 1
		}
		out, err := d.Encode(nil, m, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Unary: a Trailers-Only reply on a fresh stream stays one.
	d := newConnDecoder(c, true)
	out, _ := d.Encode(nil, reply(), 0, nil)
	if fs := frames(t, out); len(fs) != 1 || !hasStatus(t, fs[0]) {
		t.Fatalf("a fresh stream's reply: %v, want the Trailers-Only block", fs)
	}

	// After a whole message: trailers.
	d = newConnDecoder(c, true)
	part(d, grpcMessage("one"), true)
	out, _ = d.Encode(nil, reply(), 0, nil)
	fs := frames(t, out)
	hf, ok := fs[0].(*http2.HeadersFrame)
	if len(fs) != 1 || !ok || !hf.StreamEnded() || hasStatus(t, fs[0]) {
		t.Fatalf("after a whole message: %v, want trailers ending the stream", fs)
	}
	fields, _ := decodeBlock(nil, hf.HeaderBlockFragment(), 1<<20)
	if !hasField(fields, "grpc-status", "4") || len(fields) != 2 {
		t.Fatalf("trailers %v, want grpc-status 4 and grpc-message only", fields)
	}
	if len(d.send.framed) != 0 || len(d.send.open) != 0 {
		t.Fatalf("the ended stream is still followed: %d framed, %d open", len(d.send.framed), len(d.send.open))
	}

	// Inside a message (its prefix says 100 bytes, 3 came): a reset.
	d = newConnDecoder(c, true)
	msg := grpcMessage(string(make([]byte, 100)))
	part(d, msg[:8], true)
	out, _ = d.Encode(nil, reply(), 0, nil)
	fs = frames(t, out)
	if rst, ok := fs[0].(*http2.RSTStreamFrame); len(fs) != 1 || !ok || rst.ErrCode != http2.ErrCodeCancel || rst.StreamID != 1 {
		t.Fatalf("inside a message: %v, want RST_STREAM 1 CANCEL", fs)
	}
	if !d.send.hasResets.Load() || len(d.send.framed) != 0 {
		t.Fatal("the reset stream is not forgotten")
	}

	// The message completed by a later part: trailers again, and behind
	// what the client's window holds back.
	d = newConnDecoder(c, true)
	part(d, msg[:8], true)
	d.send.setInitial(50) // the client's window: 50 bytes, of which 8 went
	if held := part(d, msg[8:], false); len(held) >= len(msg)-8 {
		t.Fatalf("%d bytes sent of a part over the window", len(held))
	}
	if out, _ = d.Encode(nil, reply(), 0, nil); len(out) != 0 {
		t.Fatalf("the reply overtook the held data: %v", frames(t, out))
	}
	d.send.windowUpdate(1, 1000)
	fs = frames(t, d.Released(nil))
	last, ok := fs[len(fs)-1].(*http2.HeadersFrame)
	if !ok || !last.StreamEnded() || hasStatus(t, last) {
		t.Fatalf("released %v, want the rest of the message then trailers", fs)
	}
}

// hasStatus reports whether f is a header block with :status.
func hasStatus(t *testing.T, f http2.Frame) bool {
	t.Helper()
	hf, ok := f.(*http2.HeadersFrame)
	if !ok {
		return false
	}
	fields, err := decodeBlock(nil, hf.HeaderBlockFragment(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if f.Name == ":status" {
			return true
		}
	}
	return false
}
