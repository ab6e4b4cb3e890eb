package thrift

import (
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/metamesh/metamesh/protocols"
)

// benchCall is a framed strict binary call with a 3-field struct argument.
func benchCall(b *testing.B, cb combo) []byte {
	return build(b, cb, call{method: "sayHello", typ: thrift.CALL, seq: 42, headers: map[string]string{"x-user-id": "u-1"}})
}

func BenchmarkThriftDecode(b *testing.B) {
	for _, cb := range combos {
		b.Run(cb.String(), func(b *testing.B) {
			c, frame := newCodec(b, ""), benchCall(b, cb)
			var msg protocols.Message
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				if n, err := c.Decode(frame, &msg); err != nil || n != len(frame) {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func BenchmarkThriftEncodeRewriteID(b *testing.B) {
	for _, cb := range []combo{{"framed", "strict", false}, {"framed", "compact", false}, {"header", "strict", false}, {"header", "strict", true}} {
		b.Run(cb.String(), func(b *testing.B) {
			c, frame := newCodec(b, ""), benchCall(b, cb)
			var msg protocols.Message
			if _, err := c.Decode(frame, &msg); err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, 2*len(frame))
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				var err error
				if dst, err = c.Encode(dst[:0], &msg, 300_000_000, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
