package triple

import (
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// TestConnDecoderChecksFields: a header block the connection's own HPACK
// decoder reads is checked as the x/net Framer's ReadMetaHeaders checks
// it (header.go); each fault closes the connection.
func TestConnDecoderChecksFields(t *testing.T) {
	c := &Codec{maxMessage: 2048, maxStreams: DefaultMaxStreams}
	req := requestFields("svc", "M")
	for _, tc := range []struct {
		name   string
		fields []string
		want   string
	}{
		{"upper-case name", append(req[:len(req):len(req)], "X-Up", "1"), "invalid header name"},
		{"bad name", append(req[:len(req):len(req)], "a b", "1"), "invalid header name"},
		{"bad value", append(req[:len(req):len(req)], "x", "a\x00b"), "invalid value"},
		{"pseudo after regular", append([]string{"x", "1"}, req...), "after a regular header"},
		{"unknown pseudo", append([]string{":nope", "1"}, req...), "unknown pseudo-header"},
		{"duplicate pseudo", append([]string{":path", "/a/b"}, req...), "duplicate pseudo-header"},
		{"request and response", append([]string{":status", "200"}, req...), "a request's and a response's"},
		{"list over the limit", append(req[:len(req):len(req)], "a", strings.Repeat("v", 700), "b", strings.Repeat("v", 700), "c", strings.Repeat("v", 700)), "header list exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer()
			p.out.WriteString(http2.ClientPreface)
			p.headers(t, 1, true, tc.fields...)
			err := decodeUntilError(newConnDecoder(c, true), p.take())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestConnDecoderContinuation: a header block split over HEADERS and
// CONTINUATION frames reads as one, its fields referring to the
// connection's table, the next block too.
func TestConnDecoderContinuation(t *testing.T) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, true)
	p := newPeer()
	p.out.WriteString(http2.ClientPreface)
	fields := requestFields("org.example.Greeter", "SayHello", "x-long", strings.Repeat("y", 100))
	for _, stream := range []uint32{1, 3} {
		p.block.Reset()
		for i := 0; i < len(fields); i += 2 {
			_ = p.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		block := p.block.Bytes()
		a, b := len(block)/3, 2*len(block)/3
		_ = p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block[:a], EndStream: false})
		_ = p.fr.WriteContinuation(stream, false, block[a:b])
		_ = p.fr.WriteContinuation(stream, true, block[b:])
		p.data(t, stream, true, grpcMessage("alice"))
	}
	got := decodeAll(t, d, p.take())
	if len(got) != 2 {
		t.Fatalf("%d messages, want 2", len(got))
	}
	for i := range got {
		if attr(t, &got[i], "x-long") != strings.Repeat("y", 100) || attr(t, &got[i], "method") != "SayHello" {
			t.Fatalf("message %d: headers %v", i, got[i].Headers)
		}
		sameAsDecoded(t, c, &got[i])
	}
}
