package redis

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

func BenchmarkRedisDecode(b *testing.B) {
	for _, bc := range []struct {
		name  string
		frame []byte
	}{
		{"get", seedRequests["get"]},
		{"set-100B", seedRequests["set-100"]},
		{"mget-10", seedRequests["mget-10"]},
		{"inline-ping", seedRequests["inline-ping"]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newCodec(b, "")
			var msg protocols.Message
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.frame)))
			for b.Loop() {
				if n, err := c.Decode(bc.frame, &msg); err != nil || n != len(bc.frame) {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func BenchmarkRedisDecodeResponse(b *testing.B) {
	array := []byte("*10\r\n")
	for range 10 {
		array = append(array, "$5\r\nvalue\r\n"...)
	}
	for _, bc := range []struct {
		name  string
		frame []byte
	}{
		{"bulk", []byte("$5\r\nhello\r\n")},
		{"integer", []byte(":1000\r\n")},
		{"array-10", array},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := newCodec(b, "")
			var msg protocols.Message
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.frame)))
			for b.Loop() {
				if n, err := c.DecodeResponse(bc.frame, &msg); err != nil || n != len(bc.frame) {
					b.Fatal(n, err)
				}
			}
		})
	}
}

func BenchmarkRedisLocalForward(b *testing.B) {
	c := newCodec(b, "")
	var msg protocols.Message
	if _, err := c.Decode(seedRequests["get"], &msg); err != nil {
		b.Fatal(err)
	}
	var s Session
	b.ReportAllocs()
	for b.Loop() {
		if _, act := c.Local(nil, &s, &msg); act != Forward {
			b.Fatal(act)
		}
	}
}
