package triple

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// peer writes frames as a real HTTP/2 endpoint does: the x/net Framer and
// an HPACK encoder with a dynamic table of its own, so later blocks refer
// to fields indexed by earlier ones.
type peer struct {
	out   bytes.Buffer
	fr    *http2.Framer
	block bytes.Buffer
	enc   *hpack.Encoder
}

func newPeer() *peer {
	p := &peer{}
	p.fr = http2.NewFramer(&p.out, nil)
	p.enc = hpack.NewEncoder(&p.block)
	return p
}

func (p *peer) headers(t testing.TB, stream uint32, end bool, kv ...string) {
	t.Helper()
	p.block.Reset()
	for i := 0; i < len(kv); i += 2 {
		if err := p.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: p.block.Bytes(), EndStream: end, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
}

func (p *peer) data(t testing.TB, stream uint32, end bool, b []byte) {
	t.Helper()
	if err := p.fr.WriteData(stream, end, b); err != nil {
		t.Fatal(err)
	}
}

// take returns what p wrote so far and forgets it.
func (p *peer) take() []byte {
	b := bytes.Clone(p.out.Bytes())
	p.out.Reset()
	return b
}

// grpcMessage is a gRPC length-prefixed message (not compressed).
func grpcMessage(payload string) []byte {
	b := []byte{0, 0, 0, 0, byte(len(payload))}
	return append(b, payload...)
}

func requestFields(service, method string, extra ...string) []string {
	return append([]string{":method", "POST", ":scheme", "http", ":path", "/" + service + "/" + method,
		":authority", "127.0.0.1", "content-type", "application/grpc+proto", "te", "trailers"}, extra...)
}

// sampleRequest is a unary request in the codec's own form.
func sampleRequest(t testing.TB, stream uint32, extra ...string) []byte {
	t.Helper()
	w := getWriter(nil)
	w.headers(stream, fieldsOf(requestFields("org.apache.dubbo.samples.Greeter", "SayHello", extra...)...), false)
	w.data(stream, grpcMessage("alice"), true)
	return w.put()
}

// sampleResponse is a unary response (headers, a message, trailers).
func sampleResponse(t testing.TB, stream uint32, status string) []byte {
	t.Helper()
	w := getWriter(nil)
	w.headers(stream, fieldsOf(":status", "200", "content-type", "application/grpc+proto"), false)
	w.data(stream, grpcMessage("v1|alice"), false)
	w.headers(stream, fieldsOf("grpc-status", status), true)
	return w.put()
}

func fieldsOf(kv ...string) []hpack.HeaderField {
	var f []hpack.HeaderField
	for i := 0; i < len(kv); i += 2 {
		f = append(f, hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return f
}

func ping(ack bool) []byte {
	var b bytes.Buffer
	_ = http2.NewFramer(&b, nil).WritePing(ack, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	return b.Bytes()
}

func newCodec() protocols.Codec { return &Codec{maxMessage: 64 << 10, maxStreams: DefaultMaxStreams} }

func attr(t testing.TB, m *protocols.Message, key string) string {
	t.Helper()
	v, _ := m.Headers.Get(key)
	return v
}

// request writes a client's preface and a whole unary request on stream
// 1: the usual request fields, then extra (its header block split into
// CONTINUATION frames when it needs them).
func (p *peer) request(t testing.TB, extra ...hpack.HeaderField) {
	t.Helper()
	p.out.WriteString(http2.ClientPreface)
	p.block.Reset()
	f := requestFields("s.S", "M")
	for i := 0; i < len(f); i += 2 {
		_ = p.enc.WriteField(hpack.HeaderField{Name: f[i], Value: f[i+1]})
	}
	for _, e := range extra {
		_ = p.enc.WriteField(e)
	}
	block := p.block.Bytes()
	first, rest := block[:min(len(block), maxFrameSize)], block[min(len(block), maxFrameSize):]
	_ = p.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndHeaders: len(rest) == 0})
	for len(rest) > 0 {
		part := rest[:min(len(rest), maxFrameSize)]
		rest = rest[len(part):]
		_ = p.fr.WriteContinuation(1, len(rest) == 0, part)
	}
	p.data(t, 1, true, grpcMessage("x"))
}
