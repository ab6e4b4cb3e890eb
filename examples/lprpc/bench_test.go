package lprpc_test

import (
	"testing"

	"github.com/metamesh/metamesh/examples/lprpc"
	"github.com/metamesh/metamesh/protocols"
)

var benchFrame = lprpc.AppendFrame(nil, lprpc.Frame{ID: 42,
	Headers: hdrs("service", "echo.example", "method", "Say", "x-tenant", "batch", "user-id", "u-1234"),
	Body:    make([]byte, 256)})

func BenchmarkDecode(b *testing.B) {
	c := newCodec()
	var msg protocols.Message
	b.ReportAllocs()
	b.SetBytes(int64(len(benchFrame)))
	for b.Loop() {
		if n, err := c.Decode(benchFrame, &msg); n != len(benchFrame) || err != nil {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkEncodeID(b *testing.B) {
	benchEncode(b, nil)
}

func BenchmarkEncodeMutation(b *testing.B) {
	benchEncode(b, hdrs("x-routed-by", "metamesh", "x-tenant", "other"))
}

func benchEncode(b *testing.B, set []protocols.Header) {
	c := newCodec()
	var msg protocols.Message
	if _, err := c.Decode(benchFrame, &msg); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 2*len(benchFrame))
	b.ReportAllocs()
	b.SetBytes(int64(len(benchFrame)))
	for b.Loop() {
		var err error
		if dst, err = c.Encode(dst[:0], &msg, 7, set); err != nil {
			b.Fatal(err)
		}
	}
}
