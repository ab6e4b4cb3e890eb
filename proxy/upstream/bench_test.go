package upstream_test

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// releaser signals each outcome and returns the call to the pool, as the
// proxy does.
type releaser chan struct{}

func (r releaser) Respond(c *upstream.Call, _ *protocols.Message, _ *wire.Batch) {
	c.Release()
	r <- struct{}{}
}
func (r releaser) Fail(c *upstream.Call, _ protocols.Reason, _ error, _ *wire.Batch) {
	c.Release()
	r <- struct{}{}
}

// BenchmarkPoolRoundTrip sends 64 calls at a time over loopback TCP to an
// echo server and waits for their responses; one op is one call.
func BenchmarkPoolRoundTrip(b *testing.B) {
	for _, model := range []protocols.Model{protocols.Multiplexed, protocols.Pipelined} {
		b.Run(model.String(), func(b *testing.B) {
			srv := newServer(b, nil)
			pool, _ := newPool(b, srv.addr(), model, 2)
			raw := encodeFrame(nil, protocols.KindRequest, 1, "0123456789abcdef0123456789abcdef")
			var req protocols.Message
			if _, err := (idCodec{}).Decode(raw, &req); err != nil {
				b.Fatal(err)
			}
			done := make(releaser, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for sent := 0; sent < b.N; {
				batch := min(64, b.N-sent)
				for range batch {
					c := upstream.NewCall(&req)
					c.Receiver = done
					if err := sendNow(pool, c); err != nil {
						b.Fatal(err)
					}
				}
				for range batch {
					<-done
				}
				sent += batch
			}
		})
	}
}
