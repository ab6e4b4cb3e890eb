package dubbo

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// benchRequest is a realistic call: two string arguments and three
// attachments.
func benchRequest() []byte {
	return AppendRequest(nil, Request{
		ID: 42, TwoWay: true,
		Service: "org.apache.dubbo.samples.api.GreetingsService", Version: "1.0.0", Method: "sayHello",
		Args: []string{"world", "metamesh"},
		Attachments: []protocols.Header{
			{Key: "path", Value: "org.apache.dubbo.samples.api.GreetingsService"},
			{Key: "timeout", Value: "3000"},
			{Key: "user-id", Value: "u-12345"},
		},
	})
}

func benchCodec(b *testing.B) protocols.Codec {
	c, err := New(nil)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkDubboDecodeRequest(b *testing.B) {
	c, frame := benchCodec(b), benchRequest()
	var msg protocols.Message
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if n, err := c.Decode(frame, &msg); err != nil || n != len(frame) {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkDubboDecodeResponse(b *testing.B) {
	c, frame := benchCodec(b), AppendResponse(nil, 42, StatusOK, "hello world, from metamesh")
	var msg protocols.Message
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if n, err := c.Decode(frame, &msg); err != nil || n != len(frame) {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkDubboEncodeRewriteID(b *testing.B) {
	c, frame := benchCodec(b), benchRequest()
	var msg protocols.Message
	if _, err := c.Decode(frame, &msg); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 2*len(frame))
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		var err error
		if dst, err = c.Encode(dst[:0], &msg, 7, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDubboEncodeMutation(b *testing.B) {
	c, frame := benchCodec(b), benchRequest()
	var msg protocols.Message
	if _, err := c.Decode(frame, &msg); err != nil {
		b.Fatal(err)
	}
	set := []protocols.Header{{Key: "x-routed-by", Value: "metamesh"}, {Key: "timeout", Value: "1000"}}
	dst := make([]byte, 0, 2*len(frame))
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		var err error
		if dst, err = c.Encode(dst[:0], &msg, 7, set); err != nil {
			b.Fatal(err)
		}
	}
}
