package triple

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// TestRequestRelayParts: a client's request with one message that ends
// stays whole (a unary call's); one whose second message begins before it
// ends goes to the proxy in parts: a routable first part (a request with
// More: its headers and the data so far), then each DATA frame as a
// KindPart, the last without More. Past maxMessageBytes too: the stream's
// whole length is not a message.
func TestRequestRelayParts(t *testing.T) {
	c := &Codec{maxMessage: 1024, maxStreams: DefaultMaxStreams}
	d := newConnDecoder(c, true)
	d.preface = false
	p := newPeer()
	p.headers(t, 1, false, requestFields("svc", "Unary")...)
	p.data(t, 1, true, grpcMessage("only"))
	got := decodeAll(t, d, p.take())
	if len(got) != 1 || got[0].More || got[0].Kind != protocols.KindRequest {
		t.Fatalf("a unary request decoded as %d messages, want one whole", len(got))
	}

	big := bytes.Repeat([]byte{'b'}, 600)
	p.headers(t, 3, false, requestFields("svc", "Echo", "x-h", "v")...)
	p.data(t, 3, false, grpcMessage("one"))
	p.data(t, 3, false, grpcMessage("two"))
	p.data(t, 3, false, grpcMessage(string(big)))
	p.data(t, 3, false, grpcMessage(string(big))) // 1.2 KB so far: over the limit
	p.data(t, 3, true, nil)
	got = decodeAll(t, d, p.take())
	if len(got) != 4 {
		t.Fatalf("a client stream decoded as %d messages, want 4 parts", len(got))
	}
	first := got[0]
	if first.Kind != protocols.KindRequest || !first.More || first.ID != 1 ||
		attr(t, &first, "method") != "Echo" || attr(t, &first, "x-h") != "v" {
		t.Fatalf("first part: %v More %v ID %d headers %v", first.Kind, first.More, first.ID, first.Headers.All())
	}
	for i, m := range got[1:] {
		if m.Kind != protocols.KindPart || m.ID != 1 || m.More != (i < 2) {
			t.Fatalf("part %d: %v ID %d More %v", i+1, m.Kind, m.ID, m.More)
		}
	}
	if len(d.streams) != 0 {
		t.Errorf("%d streams left open", len(d.streams))
	}

	// Re-encoded on an upstream's stream 9 (ID 4) with a header set: the
	// stream's frames, in order, the set header in the first block only,
	// the last frame ending the stream.
	var out []byte
	for i := range got {
		var err error
		if out, err = c.Encode(out, &got[i], 4, []protocols.Header{{Key: "x-set", Value: "yes"}}); err != nil {
			t.Fatal(err)
		}
	}
	fr := http2.NewFramer(nil, bytes.NewReader(out))
	var data []byte
	blocks, ended := 0, false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		if f.Header().StreamID != 9 || ended {
			t.Fatalf("a %v frame on stream %d (after the end: %v)", f.Header().Type, f.Header().StreamID, ended)
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			data = append(data, f.Data()...)
			ended = f.StreamEnded()
		case *http2.HeadersFrame:
			blocks++
			fields, err := decodeBlock(nil, f.HeaderBlockFragment(), 1<<20)
			if err != nil || !hasField(fields, "x-set", "yes") || f.StreamEnded() {
				t.Fatalf("header block %v (%v), want the request's with x-set, not ending the stream", fields, err)
			}
		}
	}
	want := bytes.Join([][]byte{grpcMessage("one"), grpcMessage("two"), grpcMessage(string(big)), grpcMessage(string(big))}, nil)
	if blocks != 1 || !ended || !bytes.Equal(data, want) {
		t.Errorf("%d header blocks, ended %v, %d bytes of data (want %d)", blocks, ended, len(data), len(want))
	}
}

// TestRequestPromote: a request holding a whole message that has not
// ended is promoted at the end of a read (Promote), so a bidirectional
// client that waits for an answer gets one; its later frames are parts,
// and its RST_STREAM is reported as a reset.
func TestRequestPromote(t *testing.T) {
	d := newConnDecoder(newCodec().(*Codec), true)
	d.preface = false
	p := newPeer()
	p.headers(t, 5, false, requestFields("svc", "Echo")...)
	p.data(t, 5, false, grpcMessage("ping"))
	if got := decodeAll(t, d, p.take()); len(got) != 0 {
		t.Fatalf("%d messages before the end of the read", len(got))
	}
	var m protocols.Message
	if !d.Promote(&m) || m.Kind != protocols.KindRequest || !m.More || m.ID != 2 {
		t.Fatalf("Promote: %v More %v ID %d, want stream 5's first part", m.Kind, m.More, m.ID)
	}
	if d.Promote(&m) {
		t.Fatal("a second Promote found another stream")
	}
	p.data(t, 5, false, grpcMessage("again"))
	got := decodeAll(t, d, p.take())
	if len(got) != 1 || got[0].Kind != protocols.KindPart || !got[0].More {
		t.Fatalf("after promotion: %d messages, want one part with More", len(got))
	}
	_ = p.fr.WriteRSTStream(5, http2.ErrCodeCancel)
	decodeAll(t, d, p.take())
	if cr := d.Credits(nil); len(cr) != 1 || !cr[0].Reset || cr[0].ID != 2 {
		t.Fatalf("Credits after RST_STREAM: %v, want stream 5's reset", cr)
	}
	if len(d.streams) != 0 {
		t.Errorf("%d streams left open", len(d.streams))
	}
}

// TestUpstreamCredits: an upstream's WINDOW_UPDATE for a stream is
// reported as credit for that request (the proxy passes it on to the
// client of a streamed request).
func TestUpstreamCredits(t *testing.T) {
	d := newConnDecoder(newCodec().(*Codec), false)
	p := newPeer()
	_ = p.fr.WriteWindowUpdate(7, 1000)
	_ = p.fr.WriteWindowUpdate(0, 5000)
	decodeAll(t, d, p.take())
	if cr := d.Credits(nil); len(cr) != 1 || cr[0] != (protocols.StreamCredit{ID: 3, N: 1000}) {
		t.Fatalf("Credits: %v, want 1000 bytes for ID 3", cr)
	}
}

func hasField(fields []hpack.HeaderField, name, value string) bool {
	for _, f := range fields {
		if f.Name == name && f.Value == value {
			return true
		}
	}
	return false
}

// TestRelayedReset: an upstream's RST_STREAM on a relayed response is the
// response's last part, the RST_STREAM itself; encoded on the client's
// connection it goes out at once, drops what is held of the stream there,
// and the client's stream is forgotten at the next Decode (nothing more
// of it counts). A Cancel forgets the upstream's stream the same way.
func TestRelayedReset(t *testing.T) {
	c := newCodec().(*Codec)
	up := newConnDecoder(c, false)
	p := newPeer()
	p.headers(t, 3, false, ":status", "200", "content-type", "application/grpc")
	p.data(t, 3, false, append(grpcMessage("one"), grpcMessage("two")...))
	_ = p.fr.WriteRSTStream(3, http2.ErrCodeInternal)
	got := decodeAll(t, up, p.take())
	if len(got) != 2 || got[1].More || got[1].Kind != protocols.KindError || got[1].Status != codeUnavailable {
		t.Fatalf("a reset relayed stream decoded as %d parts, the last %v status %d", len(got), got[len(got)-1].Kind, got[len(got)-1].Status)
	}

	// The client's connection: its request on stream 5 (ID 2), relayed,
	// with a part held behind a window of 100 bytes.
	down := newConnDecoder(c, true)
	down.preface = false
	cp := newPeer()
	_ = cp.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100})
	cp.headers(t, 5, false, requestFields("svc", "Echo")...)
	cp.data(t, 5, false, append(grpcMessage("a"), grpcMessage("b")...))
	if n := len(decodeAll(t, down, cp.take())); n != 1 || len(down.streams) != 1 {
		t.Fatalf("%d messages, %d streams; want the first part of stream 5", n, len(down.streams))
	}
	first, _ := down.Encode(nil, &got[0], 2, nil)
	big := got[0]
	w := getWriter(nil)
	w.data(3, bytes.Repeat([]byte{'x'}, 500), false)
	big.Raw, big.Marks[markPart] = w.put(), 1
	held, _ := down.Encode(nil, &big, 2, nil)
	if len(down.send.held) != 1 || len(first)+len(held) == 0 {
		t.Fatalf("%d streams held, want stream 5's rest", len(down.send.held))
	}
	out, _ := down.Encode(nil, &got[1], 2, nil)
	fs := frames(t, out)
	if rst, ok := fs[0].(*http2.RSTStreamFrame); len(fs) != 1 || !ok || rst.StreamID != 5 || rst.ErrCode != http2.ErrCodeInternal {
		t.Fatalf("the reset encoded as %v, want RST_STREAM 5 INTERNAL_ERROR", fs)
	}
	if len(down.send.held) != 0 || len(down.send.open) != 0 {
		t.Fatalf("after the reset: %d streams held, %d open", len(down.send.held), len(down.send.open))
	}
	cp.data(t, 5, false, grpcMessage("late"))
	if got := decodeAll(t, down, cp.take()); len(got) != 0 || len(down.streams) != 0 {
		t.Fatalf("after the reset: %d messages, %d streams; want the stream forgotten", len(got), len(down.streams))
	}

	// Cancel on the upstream's connection forgets its stream too.
	p.headers(t, 7, false, ":status", "200", "content-type", "application/grpc")
	p.data(t, 7, false, append(grpcMessage("one"), grpcMessage("two")...))
	decodeAll(t, up, p.take())
	if rst := frames(t, up.Cancel(nil, 3)); len(rst) != 1 || rst[0].Header().StreamID != 7 {
		t.Fatalf("Cancel: %v", rst)
	}
	_ = p.fr.WritePing(false, [8]byte{})
	decodeAll(t, up, p.take())
	if len(up.streams) != 0 {
		t.Fatalf("%d upstream streams after the cancel, want none", len(up.streams))
	}
}

// TestPaddingCredited: the padding of a relayed stream's DATA frames is
// not relayed, so the proxy gives it back to the sender at once, on both
// sides (the reader on the other side credits only what it got).
func TestPaddingCredited(t *testing.T) {
	for _, server := range []bool{true, false} {
		d := newConnDecoder(newCodec().(*Codec), server)
		d.preface = false
		p := newPeer()
		if server {
			p.headers(t, 1, false, requestFields("svc", "Echo")...)
		} else {
			p.headers(t, 1, false, ":status", "200", "content-type", "application/grpc")
		}
		p.data(t, 1, false, append(grpcMessage("one"), grpcMessage("two")...)) // relayed from here
		decodeAll(t, d, p.take())
		_ = d.Owed(nil)
		_ = p.fr.WriteDataPadded(1, false, grpcMessage("three"), make([]byte, 40))
		if got := decodeAll(t, d, p.take()); len(got) != 1 {
			t.Fatalf("server %v: %d messages, want the padded frame's part", server, len(got))
		}
		var stream uint32
		for _, f := range frames(t, d.Owed(nil)) {
			if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID == 1 && wu.Increment == 41 { // the padding and its length byte
				stream++
			}
		}
		if stream != 1 {
			t.Fatalf("server %v: the 41 bytes of padding were not credited on the stream", server)
		}
	}
}

// TestAnsweredRequestReset: a response that ends a client's stream whose
// relayed request is still open is followed by RST_STREAM NO_ERROR, after
// the response's frames even when the client's window holds them back,
// and the read loop forgets the stream; a request that ended first gets
// none.
func TestAnsweredRequestReset(t *testing.T) {
	c := newCodec().(*Codec)
	response := func(stream uint32, data int) []protocols.Message {
		w := getWriter(nil)
		w.headers(stream, fieldsOf(":status", "200", "content-type", "application/grpc"), false)
		w.data(stream, grpcMessage(string(make([]byte, data))), false)
		first := protocols.Message{Kind: protocols.KindResponse, Raw: w.put(), More: true}
		w = getWriter(nil)
		w.headers(stream, fieldsOf("grpc-status", "0"), true)
		last := protocols.Message{Kind: protocols.KindResponse, Raw: w.put()}
		last.Marks[markPart] = 1
		return []protocols.Message{first, last}
	}
	open := func(d *connDecoder, p *peer, stream uint32, end bool) {
		p.headers(t, stream, false, requestFields("svc", "Echo")...)
		p.data(t, stream, false, grpcMessage("one"))
		decodeAll(t, d, p.take())
		var m protocols.Message
		if !d.Promote(&m) {
			t.Fatal("no stream promoted")
		}
		if end {
			p.data(t, stream, true, nil)
			decodeAll(t, d, p.take())
		}
	}
	for _, tc := range []struct {
		name      string
		ended     bool // the client ended its request first
		window    uint32
		wantReset bool
	}{
		{"open", false, 1 << 16, true},
		{"open, response held", false, 10, true},
		{"ended", true, 1 << 16, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newConnDecoder(c, true)
			d.preface = false
			p := newPeer()
			_ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: tc.window})
			open(d, p, 1, tc.ended)
			var out []byte
			for _, m := range response(1, 100) {
				out, _ = d.Encode(out, &m, 0, nil)
			}
			d.send.windowUpdate(1, 1<<16)
			out = d.Released(out)
			fs := frames(t, out)
			rst, isReset := fs[len(fs)-1].(*http2.RSTStreamFrame)
			if isReset != tc.wantReset || (isReset && rst.ErrCode != http2.ErrCodeNo) {
				t.Fatalf("frames %v; want a reset last: %v", fs, tc.wantReset)
			}
			if tc.wantReset {
				if hf, ok := fs[len(fs)-2].(*http2.HeadersFrame); !ok || !hf.StreamEnded() {
					t.Fatalf("frames %v; want the trailers before the reset", fs)
				}
			}
			p.data(t, 1, false, grpcMessage("late"))
			got := decodeAll(t, d, p.take())
			if tc.wantReset && (len(got) != 0 || len(d.streams) != 0) {
				t.Fatalf("after the reset: %d messages, %d streams; want the stream forgotten", len(got), len(d.streams))
			}
			if len(d.send.open) != 0 || len(d.send.held) != 0 || len(d.send.requests) != 0 {
				t.Fatalf("send state left: %d open, %d held, %d requests", len(d.send.open), len(d.send.held), len(d.send.requests))
			}
		})
	}
}

// TestRequestWindowEnforced: a client's relayed request may use the
// stream window the proxy advertised plus the credit it gave since, and
// no more: past it the connection fails (FLOW_CONTROL_ERROR), where the
// proxy would otherwise hold whatever the client sent.
func TestRequestWindowEnforced(t *testing.T) {
	c := &Codec{maxMessage: 1024, maxStreams: DefaultMaxStreams} // window: 65,535; frames of 16,000 bytes pass
	d := newConnDecoder(c, true)
	d.preface = false
	p := newPeer()
	p.headers(t, 1, false, requestFields("svc", "Echo")...)
	p.data(t, 1, false, append(grpcMessage("one"), grpcMessage("two")...)) // relayed from here
	chunk := bytes.Repeat([]byte{'x'}, 16000)
	for range 4 {
		p.data(t, 1, false, chunk) // 64,000 bytes, within the window
	}
	if got := decodeAll(t, d, p.take()); len(got) != 5 {
		t.Fatalf("%d messages within the window, want 5", len(got))
	}
	_ = d.Credit(nil, 0, 16000) // the upstream took 16,000 bytes: passed on
	p.data(t, 1, false, chunk)
	if got := decodeAll(t, d, p.take()); len(got) != 1 {
		t.Fatalf("%d messages within the credit, want 1", len(got))
	}
	p.data(t, 1, false, chunk)
	wire := p.take()
	var err error
	for n := 1; n > 0 && err == nil; wire = wire[n:] {
		n, err = d.Decode(wire, &protocols.Message{})
	}
	if err == nil || !strings.Contains(err.Error(), "FLOW_CONTROL_ERROR") {
		t.Fatalf("DATA past the window: %v, want a flow-control error", err)
	}
}

// TestRequestPromoteWaitsForEnd: with a grace (WaitToPromote), a request
// that holds a whole message is not promoted before the grace passes, so
// an end that comes meanwhile makes it one whole unary request; after the
// grace a request still open is promoted as a stream. PromoteAt says when.
// Fails without the grace: Promote relays the first request at once.
func TestRequestPromoteWaitsForEnd(t *testing.T) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, true)
	d.preface = false
	clock := time.Unix(1000, 0)
	d.now = func() time.Time { return clock }
	d.WaitToPromote(2 * time.Millisecond)
	p := newPeer()
	var m protocols.Message

	p.headers(t, 1, false, requestFields("svc", "Unary")...)
	p.data(t, 1, false, grpcMessage("late end"))
	if got := decodeAll(t, d, p.take()); len(got) != 0 {
		t.Fatalf("%d messages before the end", len(got))
	}
	if d.Promote(&m) {
		t.Fatal("promoted before the grace passed")
	}
	if at := d.PromoteAt(); !at.Equal(clock.Add(2 * time.Millisecond)) {
		t.Fatalf("PromoteAt = %v, want the grace from now", at)
	}
	clock = clock.Add(time.Millisecond)
	p.data(t, 1, true, nil) // the end, in a later read within the grace
	got := decodeAll(t, d, p.take())
	if len(got) != 1 || got[0].Kind != protocols.KindRequest || got[0].More || attr(t, &got[0], "method") != "Unary" {
		t.Fatalf("the request that ended within the grace decoded as %+v, want one whole unary request", got)
	}
	if d.Promote(&m) || !d.PromoteAt().IsZero() {
		t.Fatal("a request that ended is still held")
	}

	p.headers(t, 3, false, requestFields("svc", "Bidi")...)
	p.data(t, 3, false, grpcMessage("first"))
	decodeAll(t, d, p.take())
	if d.Promote(&m) {
		t.Fatal("promoted before the grace passed")
	}
	clock = clock.Add(2 * time.Millisecond)
	if !d.Promote(&m) || m.Kind != protocols.KindRequest || !m.More || m.ID != 1 {
		t.Fatalf("after the grace Promote gave %v (More %v, ID %d), want stream 3's first part", m.Kind, m.More, m.ID)
	}
	if !d.PromoteAt().IsZero() {
		t.Fatal("a promoted request is still held")
	}
}
