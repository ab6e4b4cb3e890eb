package xds

import (
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// A prepared response goes to each stream as the response it was made
// from with that stream's nonce, from one marshaling shared by all.
func TestPreparedResponsesAreMarshaledOnce(t *testing.T) {
	tb := endpointTable(t, 3, func(int) uint32 { return 1 })
	for _, bc := range []struct {
		name string
		resp *prepared
		want func(nonce string) proto.Message
		got  func() proto.Message
	}{
		{"sotw", tb.sotw, func(nonce string) proto.Message {
			return &discoveryv3.DiscoveryResponse{VersionInfo: tb.version, Resources: tb.all, TypeUrl: tb.typeURL, Nonce: nonce}
		}, func() proto.Message { return &discoveryv3.DiscoveryResponse{} }},
		{"delta", tb.whole.resp, func(nonce string) proto.Message {
			return &discoveryv3.DeltaDiscoveryResponse{SystemVersionInfo: tb.version, Resources: tb.delta, TypeUrl: tb.typeURL, Nonce: nonce}
		}, func() proto.Message { return &discoveryv3.DeltaDiscoveryResponse{} }},
	} {
		t.Run(bc.name, func(t *testing.T) {
			var shared *byte
			for _, nonce := range []string{"1", "2"} {
				var sent any
				if err := sendPrepared(func(m any) error { sent = m; return nil }, bc.resp, nonce); err != nil {
					t.Fatal(err)
				}
				data, err := codec{}.Marshal(sent)
				if err != nil {
					t.Fatal(err)
				}
				first := &data[0].ReadOnlyData()[0]
				if shared == nil {
					shared = first
				} else if first != shared {
					t.Error("the second stream's response was marshaled again")
				}
				got := bc.got()
				if err := (codec{}).Unmarshal(data, got); err != nil {
					t.Fatal(err)
				}
				if want := bc.want(nonce); !proto.Equal(want, got) {
					t.Errorf("nonce %s: got\n%v\nwant\n%v", nonce, prototext.Format(got), prototext.Format(want))
				}
			}
		})
	}
}
