package triple

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

func BenchmarkDecode(b *testing.B) {
	c := newCodec()
	frame := sampleRequest(b, 5, "batchjob", "true")
	var m protocols.Message
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := c.Decode(frame, &m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnDecode reads one unary request off the wire: HEADERS whose
// block refers to the client's dynamic table, then DATA.
func BenchmarkConnDecode(b *testing.B) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, true)
	d.preface = false
	p := newPeer()
	fields := requestFields("org.example.Greeter", "SayHello", "batchjob", "true")
	p.headers(b, 1, false, fields...) // indexes the fields
	p.data(b, 1, true, grpcMessage("alice"))
	warm := p.take()
	p.headers(b, 1, false, fields...)
	p.data(b, 1, true, grpcMessage("alice"))
	wire := p.take()
	var m protocols.Message
	for buf := warm; len(buf) > 0; {
		n, err := d.Decode(buf, &m)
		if err != nil || n == 0 {
			b.Fatal(n, err)
		}
		buf = buf[n:]
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		for buf := wire; len(buf) > 0; {
			n, err := d.Decode(buf, &m)
			if err != nil || n == 0 {
				b.Fatal(n, err)
			}
			buf = buf[n:]
		}
		_ = d.Owed(nil)
	}
}

func BenchmarkEncode(b *testing.B) {
	c := newCodec()
	var m protocols.Message
	if _, err := c.Decode(sampleRequest(b, 5), &m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		dst, _ = c.Encode(dst[:0], &m, 77, nil)
	}
}

func BenchmarkEncodeMutation(b *testing.B) {
	c := newCodec()
	var m protocols.Message
	if _, err := c.Decode(sampleRequest(b, 5), &m); err != nil {
		b.Fatal(err)
	}
	set := []protocols.Header{{Key: "x-routed-by", Value: "metamesh"}}
	b.ReportAllocs()
	var dst []byte
	for b.Loop() {
		dst, _ = c.Encode(dst[:0], &m, 77, set)
	}
}

// BenchmarkConnEncode writes one unary request on a connection through its
// peer's flow control (send.go): the common case, a message that fits the
// windows (the peer's credit is given back each time, as its WINDOW_UPDATEs
// would).
func BenchmarkConnEncode(b *testing.B) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, false)
	var m protocols.Message
	if _, err := c.Decode(sampleRequest(b, 1, "batchjob", "true"), &m); err != nil {
		b.Fatal(err)
	}
	var out []byte
	credit := uint32(len(grpcMessage("alice")))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = d.Encode(out[:0], &m, 7, nil); err != nil {
			b.Fatal(err)
		}
		d.send.windowUpdate(0, credit)
	}
}
