package xds

import (
	"bytes"
	"fmt"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// bigRequest is a delta request naming n resources whose names start
// with prefix: over pooledRequest for a few thousand.
func bigRequest(t *testing.T, prefix string, n int) []byte {
	t.Helper()
	have := map[string]string{}
	for i := range n {
		have[fmt.Sprintf("%s-%05d", prefix, i)] = "v1"
	}
	b, err := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, InitialResourceVersions: have})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < pooledRequest {
		t.Fatalf("a request of %d bytes is not pooled", len(b))
	}
	return b
}

// TestPooledRequestKeptUntilReleased: the records of a large delta
// request, kept where they lie in a pooled buffer, stay as they came
// while other large requests are decoded, until released.
func TestPooledRequestKeptUntilReleased(t *testing.T) {
	var c codec
	first := bigRequest(t, "first", 6000)
	var r deltaRequest
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(first)}, &r); err != nil {
		t.Fatal(err)
	}
	if r.initial.buf == nil || !r.initial.inPlace {
		t.Fatal("the records are not kept in the pooled buffer")
	}
	kept := bytes.Clone(r.initial.records)
	other := bigRequest(t, "other", 5000) // smaller: would fit in first's buffer
	for range 20 {
		var o deltaRequest
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(other)}, &o); err != nil {
			t.Fatal(err)
		}
		o.initial.release()
	}
	if !bytes.Equal(r.initial.records, kept) {
		t.Fatal("the records changed while other requests were decoded")
	}
	r.initial.release()
	if r.initial.buf != nil || r.initial.records != nil {
		t.Error("released records still referenced")
	}
}
