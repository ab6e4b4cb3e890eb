package triple

import (
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/codectest"
)

// FuzzDecode checks the codec's own form with the kit's invariants.
func FuzzDecode(f *testing.F) {
	reqs, resps := samples(f)
	var seeds [][]byte
	for _, s := range append(reqs, resps...) {
		seeds = append(seeds, s.Bytes)
	}
	codectest.Fuzz(f, newCodec, seeds...)
}

// FuzzConnDecode feeds wire bytes after the client preface to a client
// connection's decoder, in two reads: it never panics, consumes within
// what it was given, refuses with the codec's prefix, and whatever
// request or response it completes decodes alone in the codec's form.
func FuzzConnDecode(f *testing.F) {
	p := newPeer()
	_ = p.fr.WriteSettings()
	p.headers(f, 1, false, requestFields("svc", "M", "batchjob", "true")...)
	p.data(f, 1, true, grpcMessage("x"))
	f.Add(p.take(), 10)
	p.headers(f, 3, true, ":status", "200", "grpc-status", "0")
	_ = p.fr.WriteRSTStream(5, http2.ErrCodeCancel)
	f.Add(p.take(), 3)
	// A client stream (two messages, then more: relayed in parts) and a
	// server stream's response.
	p.headers(f, 7, false, requestFields("svc", "Echo")...)
	p.data(f, 7, false, append(grpcMessage("one"), grpcMessage("two")...))
	p.data(f, 7, true, grpcMessage("three"))
	p.headers(f, 9, false, ":status", "200", "content-type", "application/grpc")
	p.data(f, 9, false, append(grpcMessage("a"), grpcMessage("b")...))
	p.headers(f, 9, true, "grpc-status", "0")
	f.Add(p.take(), 40)
	c := newCodec().(*Codec)
	f.Fuzz(func(t *testing.T, wire []byte, cut int) {
		for _, server := range []bool{true, false} {
			d := newConnDecoder(c, server)
			in := wire
			if server {
				in = append([]byte(http2.ClientPreface), wire...)
			}
			if cut < 0 || cut > len(in) {
				cut = len(in)
			}
			buf := append([]byte(nil), in[:cut]...)
			rest := in[cut:]
			for {
				var m protocols.Message
				n, err := d.Decode(buf, &m)
				if err != nil {
					if !strings.HasPrefix(err.Error(), "triple: ") {
						t.Fatalf("error without the codec's prefix: %v", err)
					}
					break
				}
				if n < 0 || n > len(buf) {
					t.Fatalf("Decode = %d of %d bytes", n, len(buf))
				}
				if n == 0 {
					for d.Promote(&m) { // the end of a read
						if !m.More || (m.Kind != protocols.KindRequest && m.Kind != protocols.KindResponse) {
							t.Fatalf("Promote gave a %v with More %v", m.Kind, m.More)
						}
					}
					if len(rest) == 0 {
						break
					}
					buf, rest = append(buf, rest...), nil
					continue
				}
				// A whole message decodes alone; a relayed stream's parts
				// are frames of the stream, not messages.
				part := m.More || m.Kind == protocols.KindPart || m.Marks[markPart] != 0
				if !part && (m.Kind.IsRequest() || m.Kind.IsResponse()) {
					var again protocols.Message
					if k, err := c.Decode(m.Raw, &again); err != nil || k != len(m.Raw) || again.ID != m.ID || again.Kind != m.Kind {
						t.Fatalf("a completed %v does not decode alone: %d of %d, %v", m.Kind, k, len(m.Raw), err)
					}
				}
				buf = buf[n:]
				_ = d.Owed(nil)
			}
		}
	})
}
