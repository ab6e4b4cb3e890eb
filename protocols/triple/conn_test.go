package triple

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// decodeAll feeds wire bytes to d as the proxy's read loop does and
// returns the messages that were not KindControl (copies).
func decodeAll(t *testing.T, d *connDecoder, wire []byte) []protocols.Message {
	t.Helper()
	var out []protocols.Message
	for len(wire) > 0 {
		var m protocols.Message
		n, err := d.Decode(wire, &m)
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if n == 0 {
			t.Fatalf("Decode wants more than the %d bytes left", len(wire))
		}
		wire = wire[n:]
		if m.Kind != protocols.KindControl {
			sameAsDecoded(t, d.c, &m)
			c := m
			c.Raw = bytes.Clone(m.Raw)
			c.Headers = protocols.Headers{}
			for _, h := range m.Headers.All() {
				c.Headers.Add(h.Key, h.Value)
			}
			out = append(out, c)
		}
	}
	return out
}

// decodeUntilError feeds wire to d until Decode fails or wants more, and
// returns the error.
func decodeUntilError(d *connDecoder, wire []byte) error {
	var err error
	for n := 1; n > 0 && err == nil; wire = wire[n:] {
		n, err = d.Decode(wire, &protocols.Message{})
	}
	return err
}

// sameAsDecoded checks that a whole message the connection decoder set
// from the fields it read (conn.go, emitFields) is what Decode finds in
// its bytes.
func sameAsDecoded(t *testing.T, c *Codec, m *protocols.Message) {
	t.Helper()
	if m.More || m.Marks[markPart] != 0 {
		return // a relayed part: not a whole message (relay.go)
	}
	var again protocols.Message
	if n, err := c.Decode(m.Raw, &again); err != nil || n != len(m.Raw) {
		t.Fatalf("Decode of the message's own form = %d of %d bytes, %v", n, len(m.Raw), err)
	}
	if again.Kind != m.Kind || again.ID != m.ID || again.Status != m.Status || again.Marks != m.Marks ||
		fmt.Sprint(again.Headers.All()) != fmt.Sprint(m.Headers.All()) {
		t.Fatalf("decoder set %v id %d status %d marks %v %v; Decode finds %v id %d status %d marks %v %v",
			m.Kind, m.ID, m.Status, m.Marks, m.Headers.All(), again.Kind, again.ID, again.Status, again.Marks, again.Headers.All())
	}
}

// frames reads the frames in b with the x/net Framer.
func frames(t *testing.T, b []byte) []http2.Frame {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	var out []http2.Frame
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return out
		}
		out = append(out, f)
	}
}

func TestConnDecoderServerSide(t *testing.T) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, true)
	p := newPeer()
	p.out.WriteString(http2.ClientPreface)
	_ = p.fr.WriteSettings()
	_ = p.fr.WritePing(false, [8]byte{9})
	// Two interleaved calls; the second block refers to fields the first
	// indexed in the client's dynamic table.
	p.headers(t, 1, false, requestFields("org.example.Greeter", "SayHello", "batchjob", "true", "tri-service-version", "1.0.0")...)
	p.headers(t, 3, false, requestFields("org.example.Greeter", "SayBye", "tri-service-group", "g1")...)
	p.data(t, 3, false, grpcMessage("bo")[:3])
	p.data(t, 1, true, grpcMessage("alice"))
	p.data(t, 3, true, grpcMessage("bob")[3:])
	// The second call's fields again: the block written for it is reused
	// (blockMemo).
	p.headers(t, 5, false, requestFields("org.example.Greeter", "SayBye", "tri-service-group", "g1")...)
	p.data(t, 5, true, grpcMessage("carol"))
	got := decodeAll(t, d, p.take())
	if len(got) != 3 {
		t.Fatalf("%d messages, want 3", len(got))
	}
	if third := got[2]; third.ID != 2 || fmt.Sprint(third.Headers.All()) != fmt.Sprint(got[1].Headers.All()) {
		t.Fatalf("third = id %d %v, want the second's attributes", third.ID, third.Headers.All())
	}
	first, second := got[0], got[1]
	if first.Kind != protocols.KindRequest || first.ID != 0 || attr(t, &first, "method") != "SayHello" ||
		attr(t, &first, "service") != "org.example.Greeter" || attr(t, &first, "batchjob") != "true" ||
		attr(t, &first, "version") != "1.0.0" || attr(t, &first, "content-type") != "application/grpc+proto" {
		t.Fatalf("first = %v id %d %v", first.Kind, first.ID, first.Headers.All())
	}
	if second.ID != 1 || attr(t, &second, "method") != "SayBye" || attr(t, &second, "group") != "g1" {
		t.Fatalf("second = id %d %v", second.ID, second.Headers.All())
	}
	// The message decodes alone, with its body whole.
	var again protocols.Message
	if n, err := c.Decode(second.Raw, &again); err != nil || n != len(second.Raw) {
		t.Fatalf("the message in the codec's form: Decode = %d, %v", n, err)
	}
	var body []byte
	for _, f := range frames(t, second.Raw) {
		if df, ok := f.(*http2.DataFrame); ok {
			body = append(body, df.Data()...)
		}
	}
	if !bytes.Equal(body, grpcMessage("bob")) {
		t.Fatalf("body %q", body)
	}

	// Owed: the server's SETTINGS and window, the SETTINGS ACK and the
	// PING ACK; no credit yet for the few DATA bytes read
	// (TestConnDecoderCreditsConnection).
	var kinds []string
	for _, f := range frames(t, d.Owed(nil)) {
		kinds = append(kinds, f.Header().Type.String())
		if pf, ok := f.(*http2.PingFrame); ok && (!pf.IsAck() || pf.Data != [8]byte{9}) {
			t.Errorf("PING in owed: ack %v data %v", pf.IsAck(), pf.Data)
		}
	}
	if want := "SETTINGS WINDOW_UPDATE SETTINGS PING"; strings.Join(kinds, " ") != want {
		t.Fatalf("owed %s, want %s", strings.Join(kinds, " "), want)
	}
	if len(d.Owed(nil)) != 0 {
		t.Fatal("Owed did not forget what it returned")
	}
}

// TestConnDecoderCreditsConnection: the connection's window is credited
// back once a quarter of it has been read, in one WINDOW_UPDATE for all of
// it, on either side of the proxy.
func TestConnDecoderCreditsConnection(t *testing.T) {
	c := newCodec().(*Codec)
	quarter := c.window() / 4
	for _, server := range []bool{true, false} {
		d := newConnDecoder(c, server)
		d.preface = false
		p := newPeer()
		if server {
			p.headers(t, 1, false, requestFields("svc", "M")...)
		} else {
			p.headers(t, 1, false, ":status", "200", "content-type", "application/grpc")
		}
		decodeAll(t, d, p.take())
		_ = d.Owed(nil)
		credit := func() (n uint32) {
			for _, f := range frames(t, d.Owed(nil)) {
				if wu, ok := f.(*http2.WindowUpdateFrame); ok && wu.StreamID == 0 {
					n += wu.Increment
				}
			}
			return n
		}
		chunk := make([]byte, 1000)
		read := uint32(0)
		for read+uint32(len(chunk)) < quarter {
			p.data(t, 1, false, chunk)
			decodeAll(t, d, p.take())
			read += uint32(len(chunk))
		}
		if n := credit(); n != 0 {
			t.Fatalf("server %v: credit %d after %d bytes, below a quarter of the window (%d)", server, n, read, quarter)
		}
		p.data(t, 1, false, chunk)
		decodeAll(t, d, p.take())
		read += uint32(len(chunk))
		if n := credit(); n != read {
			t.Fatalf("server %v: credit %d once %d bytes were read (a quarter: %d), want all of them", server, n, read, quarter)
		}
	}
}

func TestConnDecoderClientSide(t *testing.T) {
	d := newConnDecoder(newCodec().(*Codec), false)
	p := newPeer()
	_ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 10})
	p.headers(t, 3, false, ":status", "200", "content-type", "application/grpc")
	p.data(t, 3, false, grpcMessage("v1|alice"))
	p.headers(t, 3, true, "grpc-status", "0", "grpc-message", "")
	p.headers(t, 5, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "12", "grpc-message", "no such method")
	_ = p.fr.WriteRSTStream(7, http2.ErrCodeRefusedStream)
	got := decodeAll(t, d, p.take())
	if len(got) != 3 {
		t.Fatalf("%d messages, want 3", len(got))
	}
	if got[0].Kind != protocols.KindResponse || got[0].ID != 1 || got[0].Status != 0 {
		t.Errorf("response = %v id %d status %d", got[0].Kind, got[0].ID, got[0].Status)
	}
	if got[1].Kind != protocols.KindError || got[1].ID != 2 || got[1].Status != codeUnimplemented || attr(t, &got[1], "grpc-message") != "no such method" {
		t.Errorf("trailers only = %v id %d status %d %v", got[1].Kind, got[1].ID, got[1].Status, got[1].Headers.All())
	}
	if got[2].Kind != protocols.KindError || got[2].ID != 3 || got[2].Status != codeUnavailable || !strings.Contains(attr(t, &got[2], "grpc-message"), "REFUSED_STREAM") {
		t.Errorf("reset = %v id %d status %d %v", got[2].Kind, got[2].ID, got[2].Status, got[2].Headers.All())
	}
	if c := (&Codec{}).Classify(&got[2]); c != protocols.ClassUnavailable {
		t.Errorf("a reset stream classifies as %v, want unavailable", c)
	}
	if l := d.PeerLimits(); l != (protocols.PeerLimits{Settled: true, MaxInFlight: 10}) {
		t.Errorf("limits %+v, want settled at 10 streams", l)
	}
}

// TestConnDecoderPeerLimits: an upstream's SETTINGS and GOAWAY frames,
// as grpc-go's graceful stop sends them (2^31-1, then the last stream it
// took); a later SETTINGS changes the limit, a GOAWAY never raises the
// last ID. A client's GOAWAY and SETTINGS are no upstream's limits.
func TestConnDecoderPeerLimits(t *testing.T) {
	d := newConnDecoder(newCodec().(*Codec), false)
	p := newPeer()
	step := func(write func(), want protocols.PeerLimits) {
		t.Helper()
		write()
		decodeAll(t, d, p.take())
		if got := d.PeerLimits(); got != want {
			t.Fatalf("limits %+v, want %+v", got, want)
		}
	}
	step(func() {}, protocols.PeerLimits{})
	step(func() { _ = p.fr.WriteSettings() }, protocols.PeerLimits{Settled: true})
	step(func() { _ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1}) },
		protocols.PeerLimits{Settled: true, MaxInFlight: 1})
	step(func() { _ = p.fr.WriteGoAway(1<<31-1, http2.ErrCodeNo, nil) },
		protocols.PeerLimits{Settled: true, MaxInFlight: 1, Away: true, LastID: 1<<30 - 1})
	step(func() { _ = p.fr.WriteGoAway(7, http2.ErrCodeNo, nil) },
		protocols.PeerLimits{Settled: true, MaxInFlight: 1, Away: true, LastID: 3})
	step(func() { _ = p.fr.WriteGoAway(9, http2.ErrCodeNo, nil) },
		protocols.PeerLimits{Settled: true, MaxInFlight: 1, Away: true, LastID: 3})
	step(func() { _ = p.fr.WriteGoAway(0, http2.ErrCodeNo, nil) },
		protocols.PeerLimits{Settled: true, MaxInFlight: 1, Away: true, LastID: 0})

	s := newConnDecoder(newCodec().(*Codec), true)
	cp := newPeer()
	cp.out.WriteString(http2.ClientPreface)
	_ = cp.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1})
	_ = cp.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	decodeAll(t, s, cp.take())
	if l := s.PeerLimits(); l != (protocols.PeerLimits{}) {
		t.Errorf("a client's frames gave limits %+v", l)
	}
}

func TestConnDecoderPrefixes(t *testing.T) {
	p := newPeer()
	p.out.WriteString(http2.ClientPreface)
	_ = p.fr.WriteSettings()
	p.headers(t, 1, false, requestFields("svc", "M")...)
	p.data(t, 1, true, grpcMessage("x"))
	wire := p.take()
	d := newConnDecoder(newCodec().(*Codec), true)
	var msgs int
	for start := 0; start < len(wire); {
		var m protocols.Message
		// Every prefix of what is left is not enough, then the whole is.
		end := start + 1
		for ; end <= len(wire); end++ {
			n, err := d.Decode(wire[start:end], &m)
			if err != nil {
				t.Fatalf("Decode(%d bytes at %d): %v", end-start, start, err)
			}
			if n > 0 {
				start += n
				break
			}
		}
		if m.Kind == protocols.KindRequest {
			msgs++
		}
	}
	if msgs != 1 {
		t.Fatalf("%d requests", msgs)
	}
}

func TestConnDecoderRefuses(t *testing.T) {
	c := &Codec{maxMessage: 2048, maxStreams: 1}
	t.Run("bad preface", func(t *testing.T) {
		_, err := newConnDecoder(c, true).Decode([]byte("GET / HTTP/1.1\r\n"), &protocols.Message{})
		if err == nil || !strings.HasPrefix(err.Error(), "triple: not the HTTP/2 client preface") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a GOAWAY says why", func(t *testing.T) {
		err := fmt.Errorf("triple: frame of 20000 bytes exceeds 16384")
		fs := frames(t, c.RejectReply(nil, nil, err))
		if ga, ok := fs[0].(*http2.GoAwayFrame); len(fs) != 1 || !ok || ga.ErrCode != http2.ErrCodeProtocol || string(ga.DebugData()) != err.Error() {
			t.Fatalf("RejectReply = %v", fs)
		}
		if out := c.RejectReply(nil, []byte("GET /"), fmt.Errorf("%s: %q", errNotPreface, "GET /")); len(out) != 0 {
			t.Fatalf("RejectReply to an HTTP/1 client = %q, want nothing", out)
		}
	})
	t.Run("too many streams", func(t *testing.T) {
		p := newPeer()
		p.out.WriteString(http2.ClientPreface)
		p.headers(t, 1, false, requestFields("svc", "M")...)
		p.headers(t, 3, false, requestFields("svc", "M")...)
		err := decodeUntilError(newConnDecoder(c, true), p.take())
		if err == nil || !strings.Contains(err.Error(), "more than 1 concurrent streams") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("message over the limit", func(t *testing.T) {
		p := newPeer()
		p.out.WriteString(http2.ClientPreface)
		p.headers(t, 1, false, requestFields("svc", "M")...)
		msg := make([]byte, 2100) // one gRPC message of 2095 bytes
		binary.BigEndian.PutUint32(msg[1:5], 2095)
		p.data(t, 1, false, msg[:2000])
		p.data(t, 1, true, msg[2000:])
		err := decodeUntilError(newConnDecoder(c, true), p.take())
		if err == nil || !strings.Contains(err.Error(), "exceeds the limit 2048") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("one DATA frame over the limit", func(t *testing.T) {
		p := newPeer()
		p.out.WriteString(http2.ClientPreface)
		p.headers(t, 1, false, requestFields("svc", "M")...)
		msg := make([]byte, 3005) // one gRPC message of 3000 bytes, in one frame
		binary.BigEndian.PutUint32(msg[1:5], 3000)
		p.data(t, 1, true, msg)
		err := decodeUntilError(newConnDecoder(c, true), p.take())
		if err == nil || !strings.Contains(err.Error(), "exceeds the limit 2048") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad path resets the stream only", func(t *testing.T) {
		p := newPeer()
		p.out.WriteString(http2.ClientPreface)
		p.headers(t, 1, true, ":method", "POST", ":scheme", "http", ":path", "/nomethod", ":authority", "x")
		d := newConnDecoder(c, true)
		if got := decodeAll(t, d, p.take()); len(got) != 0 {
			t.Fatalf("%d messages", len(got))
		}
		fs := frames(t, d.Owed(nil))
		rst, ok := fs[len(fs)-1].(*http2.RSTStreamFrame)
		if !ok || rst.StreamID != 1 || rst.ErrCode != http2.ErrCodeProtocol {
			t.Fatalf("last owed frame %v, want RST_STREAM 1 PROTOCOL_ERROR", fs[len(fs)-1])
		}
	})
}

// TestConnDecoderKeepsNoLargeFieldSlices: the room a header block of many
// fields took (here 20,000, one byte each on the wire) is not kept for the
// connection's life once its stream completes, by its stream or by the
// decoder's slice for the block being read.
func TestConnDecoderKeepsNoLargeFieldSlices(t *testing.T) {
	c := &Codec{maxMessage: DefaultMaxMessageBytes, maxStreams: DefaultMaxStreams}
	d := newConnDecoder(c, true)
	p := newPeer()
	p.request(t, slices.Repeat([]hpack.HeaderField{{Name: "a"}}, 20_000)...)
	if msgs := decodeAll(t, d, p.take()); len(msgs) != 1 || msgs[0].Kind != protocols.KindRequest {
		t.Fatalf("decoded %d messages, want the request", len(msgs))
	}
	kept := cap(d.block.fields)
	for _, st := range d.spare {
		kept += cap(st.fields) + cap(st.trailers)
	}
	if kept > 2*maxSpareFields {
		t.Fatalf("the decoder keeps room for %d fields after the call", kept)
	}
}
