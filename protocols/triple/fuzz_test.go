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
					if len(rest) == 0 {
						break
					}
					buf, rest = append(buf, rest...), nil
					continue
				}
				if m.Kind.IsRequest() || m.Kind.IsResponse() {
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
