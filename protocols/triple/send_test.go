package triple

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// bigRequest is a request in the codec's own form whose DATA is n bytes.
func bigRequest(t *testing.T, c *Codec, n int) *protocols.Message {
	t.Helper()
	w := getWriter(nil)
	f := requestFields("svc", "Call")
	var fields []hpack.HeaderField
	for i := 0; i < len(f); i += 2 {
		fields = append(fields, hpack.HeaderField{Name: f[i], Value: f[i+1]})
	}
	w.headers(1, fields, false)
	w.data(1, bytes.Repeat([]byte{'x'}, n), true)
	raw := w.put()
	var m protocols.Message
	if k, err := c.Decode(raw, &m); err != nil || k != len(raw) {
		t.Fatalf("Decode = %d, %v", k, err)
	}
	return &m
}

// sent sums the DATA bytes in b (whole frames, as the x/net Framer reads
// them) and says whether a frame ended the stream.
func sent(t *testing.T, b []byte) (data int, ended bool) {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return data, ended
		}
		if df, ok := f.(*http2.DataFrame); ok {
			data += len(df.Data())
			ended = ended || df.StreamEnded()
		}
	}
}

// TestSendWindow: a message larger than the peer's windows goes out as
// far as they allow (65535 bytes, the initial windows); the rest waits
// for the peer's WINDOW_UPDATEs (the connection's and the stream's both),
// then a SETTINGS that widens every stream's window; the last frame ends
// the stream. A message that fits goes out whole at once; a reset drops
// what is held.
func TestSendWindow(t *testing.T) {
	c := &Codec{maxMessage: 1 << 20, maxStreams: DefaultMaxStreams}
	d := newConnDecoder(c, false)
	p := newPeer()
	feed := feeder(t, d, p)
	out, err := d.Encode(nil, bigRequest(t, c, 200_000), 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, ended := sent(t, out); n != initialWindow || ended {
		t.Fatalf("first write: %d bytes of DATA (ended %v), want %d", n, ended, initialWindow)
	}
	// Stream room alone, or connection room alone, releases nothing.
	if n, _ := sent(t, feed(func() { _ = p.fr.WriteWindowUpdate(3, 50_000) })); n != 0 {
		t.Fatalf("a stream WINDOW_UPDATE alone released %d bytes", n)
	}
	if n, _ := sent(t, feed(func() { _ = p.fr.WriteWindowUpdate(0, 40_000) })); n != 40_000 {
		t.Fatalf("then a connection WINDOW_UPDATE released %d bytes, want 40000", n)
	}
	if n, _ := sent(t, feed(func() { _ = p.fr.WriteWindowUpdate(0, 1<<20) })); n != 10_000 {
		t.Fatalf("more connection room released %d bytes, want the stream's 10000 left", n)
	}
	n, ended := sent(t, feed(func() {
		_ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20})
	}))
	if n != 200_000-initialWindow-50_000 || !ended {
		t.Fatalf("a wider initial window released %d bytes (ended %v), want the %d left, ending the stream", n, ended, 200_000-initialWindow-50_000)
	}
	if len(d.send.held) != 0 || len(d.send.order) != 0 {
		t.Fatalf("streams still held: %v", d.send.order)
	}

	// A message within both windows goes out whole.
	out, _ = d.Encode(nil, bigRequest(t, c, 1000), 2, nil)
	if n, ended := sent(t, out); n != 1000 || !ended {
		t.Fatalf("a small message: %d bytes (ended %v), want all 1000", n, ended)
	}

	// A reset drops what is held of its stream.
	feed(func() { _ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 100}) })
	out, _ = d.Encode(nil, bigRequest(t, c, 5000), 3, nil)
	if n, _ := sent(t, out); n != 100 {
		t.Fatalf("under a 100-byte window: %d bytes sent", n)
	}
	if n, _ := sent(t, feed(func() { _ = p.fr.WriteRSTStream(7, http2.ErrCodeCancel) })); n != 0 || len(d.send.held) != 0 {
		t.Fatalf("after the reset: %d bytes released, %d streams held", n, len(d.send.held))
	}
}

// feeder returns what a test feeds d with: write has p write frames, which
// d decodes; the result is what d then sends (the frames its peer's
// windows released).
func feeder(t *testing.T, d *connDecoder, p *peer) func(write func()) []byte {
	return func(write func()) []byte {
		t.Helper()
		write()
		decodeAll(t, d, p.take())
		return d.Released(d.Owed(nil))
	}
}
