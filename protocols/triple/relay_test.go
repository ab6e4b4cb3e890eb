package triple

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"

	"github.com/metamesh/metamesh/protocols"
)

// TestRelayParts: an upstream's response with one message stays whole
// (unary); one whose second message begins before it ends goes to the
// proxy in parts: the headers and data so far, then each DATA frame, then
// the trailers with the status, every part but the last with More. The
// parts re-encoded on another stream are the stream's frames, in order.
func TestRelayParts(t *testing.T) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, false)
	p := newPeer()
	p.headers(t, 3, false, ":status", "200", "content-type", "application/grpc")
	p.data(t, 3, false, grpcMessage("only"))
	p.headers(t, 3, true, "grpc-status", "0")
	got := decodeAll(t, d, p.take())
	if len(got) != 1 || got[0].More || got[0].Kind != protocols.KindResponse {
		t.Fatalf("a unary response decoded as %d messages (More %v), want one whole", len(got), len(got) > 0 && got[0].More)
	}

	p.headers(t, 5, false, ":status", "200", "content-type", "application/grpc")
	p.data(t, 5, false, grpcMessage("one"))
	p.data(t, 5, false, append(grpcMessage("two"), grpcMessage("three")...))
	p.data(t, 5, false, grpcMessage("four"))
	p.headers(t, 5, true, "grpc-status", "9", "grpc-message", "stopped")
	got = decodeAll(t, d, p.take())
	if len(got) != 3 {
		t.Fatalf("a server stream decoded as %d messages, want 3 parts", len(got))
	}
	for i, m := range got {
		if m.ID != 2 || m.More != (i < 2) {
			t.Fatalf("part %d: ID %d, More %v", i, m.ID, m.More)
		}
	}
	if got[0].Kind != protocols.KindResponse || attr(t, &got[0], "content-type") != "application/grpc" {
		t.Errorf("first part %v with headers %v", got[0].Kind, got[0].Headers.All())
	}
	if got[2].Kind != protocols.KindError || got[2].Status != 9 || attr(t, &got[2], "grpc-message") != "stopped" {
		t.Errorf("last part %v status %d, want the trailers' 9", got[2].Kind, got[2].Status)
	}
	if len(d.streams) != 0 {
		t.Errorf("%d streams left open", len(d.streams))
	}

	// Re-encoded for a client's stream 7 (ID 3), with a header to set:
	// only the first part has headers to set it in.
	var out []byte
	for _, m := range got {
		var err error
		if out, err = c.Encode(out, &m, 3, []protocols.Header{{Key: "x-set", Value: "yes"}}); err != nil {
			t.Fatal(err)
		}
	}
	var data []byte
	var headers []map[string]string
	fr := http2.NewFramer(nil, bytes.NewReader(out))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if f.Header().StreamID != 7 {
			t.Fatalf("a %v frame on stream %d, want 7", f.Header().Type, f.Header().StreamID)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if f.StreamEnded() {
				t.Fatal("a DATA frame ends the stream before its trailers")
			}
			data = append(data, f.Data()...)
		case *http2.HeadersFrame:
			fields, err := decodeBlock(nil, f.HeaderBlockFragment(), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			h := map[string]string{}
			for _, hf := range fields {
				h[hf.Name] = hf.Value
			}
			headers = append(headers, h)
		}
	}
	want := bytes.Join([][]byte{grpcMessage("one"), grpcMessage("two"), grpcMessage("three"), grpcMessage("four")}, nil)
	if !bytes.Equal(data, want) {
		t.Errorf("relayed data %q, want %q", data, want)
	}
	if len(headers) != 2 || headers[0]["x-set"] != "yes" || headers[1]["grpc-status"] != "9" || headers[1]["x-set"] != "" {
		t.Errorf("header blocks %v, want the response headers with x-set, then the trailers", headers)
	}
}

// TestSendWindowAcrossParts: a relayed stream's parts share its window:
// the part that no longer fits is held until the peer's WINDOW_UPDATE for
// that stream, and later parts wait behind it.
func TestSendWindowAcrossParts(t *testing.T) {
	c := &Codec{maxMessage: 1 << 20, maxStreams: DefaultMaxStreams}
	d := newConnDecoder(c, true)
	d.preface = false
	p := newPeer()
	feed := feeder(t, d, p)
	feed(func() { _ = p.fr.WriteWindowUpdate(0, 1<<20) }) // connection room is no limit
	w := getWriter(nil)
	w.headers(1, fieldsOf(":status", "200"), false)
	first := &protocols.Message{Kind: protocols.KindResponse, Raw: w.put(), More: true}
	part := func(n int, end bool) *protocols.Message {
		w := getWriter(nil)
		w.data(1, bytes.Repeat([]byte{'x'}, n), end)
		m := &protocols.Message{Kind: protocols.KindResponse, Raw: w.put(), More: !end}
		m.Marks[markPart] = 1
		return m
	}
	enc := func(m *protocols.Message) int {
		t.Helper()
		out, err := d.Encode(nil, m, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := sent(t, out)
		return n
	}
	enc(first)
	if n := enc(part(40_000, false)); n != 40_000 {
		t.Fatalf("first part: %d bytes sent, want all 40000", n)
	}
	if n := enc(part(40_000, false)); n != initialWindow-40_000 {
		t.Fatalf("second part: %d bytes sent, want the %d left of the stream's window", n, initialWindow-40_000)
	}
	if n := enc(part(10, true)); n != 0 {
		t.Fatalf("a part behind a held one: %d bytes sent", n)
	}
	if n, _ := sent(t, feed(func() { _ = p.fr.WriteWindowUpdate(1, 1<<20) })); n != 80_010-initialWindow {
		t.Fatalf("the stream's WINDOW_UPDATE released %d bytes, want %d", n, 80_010-initialWindow)
	}
	if len(d.send.held) != 0 || len(d.send.open) != 0 {
		t.Errorf("after the end: %d held, %d open streams", len(d.send.held), len(d.send.open))
	}
}

// TestSendWindowReleasedFirst: frames a WINDOW_UPDATE released, not yet
// taken by Owed, go out before a later part of their stream.
func TestSendWindowReleasedFirst(t *testing.T) {
	c := &Codec{maxMessage: 1 << 20, maxStreams: DefaultMaxStreams}
	d := newConnDecoder(c, true)
	d.preface = false
	p := newPeer()
	_ = p.fr.WriteWindowUpdate(0, 1<<20)
	decodeAll(t, d, p.take())
	part := func(b byte, n int) *protocols.Message {
		w := getWriter(nil)
		w.data(1, bytes.Repeat([]byte{b}, n), false)
		m := &protocols.Message{Kind: protocols.KindResponse, Raw: w.put(), More: true}
		m.Marks[markPart] = 1
		return m
	}
	var wire []byte
	for _, m := range []*protocols.Message{part('a', initialWindow), part('b', 100)} {
		out, err := d.Encode(nil, m, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		wire = append(wire, out...)
	}
	_ = p.fr.WriteWindowUpdate(1, 50) // releases 50 bytes of b, for Released
	decodeAll(t, d, p.take())
	_ = p.fr.WriteWindowUpdate(1, 1000)
	decodeAll(t, d, p.take())
	out, err := d.Encode(nil, part('c', 10), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	wire = append(append(wire, out...), d.Released(nil)...)
	var data []byte
	fr := http2.NewFramer(nil, bytes.NewReader(wire))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if df, ok := f.(*http2.DataFrame); ok {
			data = append(data, df.Data()...)
		}
	}
	want := append(append(bytes.Repeat([]byte{'a'}, initialWindow), bytes.Repeat([]byte{'b'}, 100)...), bytes.Repeat([]byte{'c'}, 10)...)
	if !bytes.Equal(data, want) {
		t.Fatalf("the stream's data went out as %d bytes not in order (%q...)", len(data), data[initialWindow:min(len(data), initialWindow+120)])
	}
}

// TestPromote: a response holding a whole message that has not ended is
// promoted to a relayed one at the end of a read (Promote): its first
// part now, its trailers as the last; one that ended in the read is not.
func TestPromote(t *testing.T) {
	d := newConnDecoder(newCodec().(*Codec), false)
	p := newPeer()
	p.headers(t, 3, false, ":status", "200", "content-type", "application/grpc")
	p.data(t, 3, false, grpcMessage("first"))
	p.headers(t, 5, false, ":status", "200", "content-type", "application/grpc")
	p.data(t, 5, false, grpcMessage("whole"))
	p.headers(t, 5, true, "grpc-status", "0")
	if got := decodeAll(t, d, p.take()); len(got) != 1 || got[0].ID != 2 || got[0].More {
		t.Fatalf("the read decoded %d messages, want stream 5's whole response", len(got))
	}
	var m protocols.Message
	if !d.Promote(&m) || m.ID != 1 || !m.More || m.Kind != protocols.KindResponse {
		t.Fatalf("Promote: ID %d More %v %v, want stream 3's first part", m.ID, m.More, m.Kind)
	}
	if d.Promote(&m) {
		t.Fatalf("a second promotion (ID %d): the ended stream or a repeat", m.ID)
	}
	p.headers(t, 3, true, "grpc-status", "0")
	if got := decodeAll(t, d, p.take()); len(got) != 1 || got[0].ID != 1 || got[0].More || got[0].Status != 0 {
		t.Fatalf("the trailers decoded as %d messages, want the last part of stream 3", len(got))
	}
}
