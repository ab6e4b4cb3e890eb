package xds_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// grpcFramed is msgs as gRPC sends them: each with its 5-byte prefix.
func grpcFramed(t *testing.T, msgs ...proto.Message) []byte {
	t.Helper()
	var out []byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(binary.BigEndian.AppendUint32(append(out, 0), uint32(len(b))), b...)
	}
	return out
}

// decodePieces feeds stream to a deltaDecoder in pieces of random sizes
// up to most bytes, and returns the responses it decoded.
func decodePieces(stream []byte, most int, rng *rand.Rand) ([]deltaResponse, error) {
	var got []deltaResponse
	d := &deltaDecoder{onResponse: func(r *deltaResponse) error {
		got = append(got, deltaResponse{typeURL: bytes.Clone(r.typeURL), nonce: bytes.Clone(r.nonce),
			version: bytes.Clone(r.version), resources: r.resources, removed: r.removed})
		return nil
	}}
	for len(stream) > 0 {
		n := min(len(stream), 1+rng.IntN(most))
		if err := d.write(stream[:n]); err != nil {
			return got, err
		}
		stream = stream[n:]
	}
	return got, nil
}

// TestDeltaDecoderPieces: the lean sidecar's decoder reads responses cut
// anywhere (down to single bytes, as HTTP/2 DATA frames may cut them)
// as protobuf's own decoding reads them whole.
func TestDeltaDecoderPieces(t *testing.T) {
	big := &anypb.Any{TypeUrl: resourcev3.RouteType, Value: bytes.Repeat([]byte{0x0a}, 40000)}
	resp := []*discoveryv3.DeltaDiscoveryResponse{{
		SystemVersionInfo: "v-one", TypeUrl: resourcev3.RouteType, Nonce: "n1",
		Resources: []*discoveryv3.Resource{
			{Name: "a", Version: "1", Resource: big},
			{Name: "bb", Version: "2", Resource: &anypb.Any{TypeUrl: resourcev3.RouteType, Value: []byte{1}}, Aliases: []string{"x"}},
			{Name: "c", Version: "3", Resource: big},
		},
		RemovedResources: []string{"gone", "also"},
	}, {
		SystemVersionInfo: "v-two", TypeUrl: resourcev3.ClusterType, Nonce: "n2",
	}}
	stream := grpcFramed(t, resp[0], resp[1])
	rng := rand.New(rand.NewPCG(1, 2))
	for _, most := range []int{1, 7, 300, 16384, len(stream)} {
		got, err := decodePieces(stream, most, rng)
		if err != nil {
			t.Fatalf("pieces of up to %d bytes: %v", most, err)
		}
		if len(got) != len(resp) {
			t.Fatalf("pieces of up to %d bytes: %d responses, want %d", most, len(got), len(resp))
		}
		for i, r := range resp {
			var res, removed typeDigest
			for _, x := range r.GetResources() {
				res.add([]byte(x.GetName()))
			}
			for _, name := range r.GetRemovedResources() {
				removed.add([]byte(name))
			}
			g := got[i]
			if string(g.typeURL) != r.GetTypeUrl() || string(g.nonce) != r.GetNonce() || string(g.version) != r.GetSystemVersionInfo() ||
				g.resources != res || g.removed != removed {
				t.Errorf("pieces of up to %d bytes, response %d: got %s %s %s %+v %+v, want %s %s %s %+v %+v", most, i,
					g.typeURL, g.nonce, g.version, g.resources, g.removed,
					r.GetTypeUrl(), r.GetNonce(), r.GetSystemVersionInfo(), res, removed)
			}
		}
	}
}

// TestDeltaDecoderMalformed: a response the lean sidecar cannot read, or
// with a resource it would not accept, is an error, not a response.
func TestDeltaDecoderMalformed(t *testing.T) {
	good := grpcFramed(t, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.RouteType, Nonce: "n",
		Resources: []*discoveryv3.Resource{{Name: "a", Version: "1", Resource: &anypb.Any{Value: []byte{1}}}}})
	long := bytes.Clone(good)
	binary.BigEndian.PutUint32(long[1:5], uint32(len(good)-5-1)) // the resource runs past the message
	for name, stream := range map[string][]byte{
		"no name": grpcFramed(t, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.RouteType, Nonce: "n",
			Resources: []*discoveryv3.Resource{{Version: "1", Resource: &anypb.Any{Value: []byte{1}}}}}),
		"no body": grpcFramed(t, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.RouteType, Nonce: "n",
			Resources: []*discoveryv3.Resource{{Name: "a", Version: "1"}}}),
		"field past its message": long,
		"compressed":             append([]byte{1}, good[1:]...),
		"varint field":           append(binary.BigEndian.AppendUint32([]byte{0}, 2), 0x08, 0x01),
	} {
		got, err := decodePieces(stream, 3, rand.New(rand.NewPCG(3, 4)))
		if !errors.Is(err, errWrongConfig) || len(got) != 0 {
			t.Errorf("%s: %d responses, error %v; want none and a wrong config", name, len(got), err)
		}
	}
}

// leanFleet is one lean sidecar connected to addr, not reconnecting.
func leanFleet(addr string, sc *sidecar) *fleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{acked: make(chan struct{}, 1), cancel: cancel, h2: true}
	f.add(ctx, addr, "lean.default", sc)
	return f
}

// TestLeanSidecarAgainstADS: a lean sidecar connects to the real ADS
// server, gets its whole view (checked by count and names), ACKs every
// response (the server counts them, no NACK), and ACKs a push.
func TestLeanSidecarAgainstADS(t *testing.T) {
	srv, addr := startServer(t, xds.Options{}, nil)
	v1, v2 := resourcesFor(50, "v1"), resourcesFor(50, "v2")
	srv.Update(v1)
	waitFor(t, time.Minute, "the first publish", srv.Ready)
	f := leanFleet(addr, &sidecar{expect: expectOf(v1)})
	defer f.stop()
	if err := f.waitRoutes(nil, srv.Versions()["route"], time.Minute); err != nil {
		t.Fatal(err)
	}
	old := srv.Versions()["route"]
	srv.Update(v2)
	if err := f.waitRoutes(nil, changed(t, route(srv), old), time.Minute); err != nil {
		t.Fatal(err)
	}
	acks, _ := f.acks(nil)
	if acks < 5 {
		t.Errorf("%d responses ACKed, want the first of each of 4 types and a push", acks)
	}
	waitFor(t, time.Minute, "the server to count the ACKs", func() bool {
		return metric(t, srv.Registry(), "metamesh_controlplane_xds_acks_total", nil) == float64(acks)
	})
	if n := metric(t, srv.Registry(), "metamesh_controlplane_xds_nacks_total", nil); n != 0 {
		t.Errorf("%v NACKs", n)
	}
}

// TestLeanSidecarWrongConfig: a lean sidecar expecting another config
// than the control plane's fails on its first response.
func TestLeanSidecarWrongConfig(t *testing.T) {
	srv, addr := startServer(t, xds.Options{}, nil)
	srv.Update(resourcesFor(50, "v1"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sc := &sidecar{expect: expectOf(resourcesFor(49, "v1"))}
	if err := sc.runH2(ctx, addr, "lean.default", make(chan struct{}, 1)); !errors.Is(err, errWrongConfig) {
		t.Fatalf("got %v, want a wrong config", err)
	}
}

// TestLeanSidecarResume: a lean sidecar naming what it has (its first
// requests larger than the control plane's 64 KiB window, so sent as
// the window allows) is sent nothing until a push, then only what
// changed.
func TestLeanSidecarResume(t *testing.T) {
	srv, addr := startServer(t, xds.Options{}, nil)
	srv.Update(resourcesFor(300, "v1"))
	waitFor(t, time.Minute, "the first publish", srv.Ready)
	have := recordedHave(t, resourcesFor(300, "v1"))
	initial, err := marshalInitial(have)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, b := range initial {
		size += len(b)
	}
	if size <= 64<<10 {
		t.Fatalf("first requests of %d bytes: not beyond the window", size)
	}
	acksBefore := metric(t, srv.Registry(), "metamesh_controlplane_xds_acks_total", nil)
	sc := &sidecar{have: have, initial: initial}
	f := leanFleet(addr, sc)
	defer f.stop()
	old := srv.Versions()["route"]
	srv.Update(resourcesFor(300, "v2"))
	if err := f.waitRoutes(nil, changed(t, route(srv), old), time.Minute); err != nil {
		t.Fatal(err)
	}
	if n := sc.acks.Load(); n >= int64(len(adsTypes)) {
		t.Errorf("%d responses after resuming and one push of routes, want fewer than one of each type", n)
	}
	waitFor(t, time.Minute, "the server to count the ACKs", func() bool {
		return metric(t, srv.Registry(), "metamesh_controlplane_xds_acks_total", nil) == acksBefore+float64(sc.acks.Load())
	})
}

// route is srv's route version, for changed.
func route(srv *xds.Server) func() string {
	return func() string { return srv.Versions()["route"] }
}

// TestLeanSidecarResumeStale: a proxy resuming with a restarted control
// plane, one cluster at a stale version and 1,000 that are gone, gets
// that cluster and those names removed, and no other response. Its first
// requests, over 64 KiB each, were copied into the codec's pooled
// buffers and handled before the control plane had a config, so the
// names were compared where they lay after all four had been read.
// (A buffer given back too soon is caught by
// TestPooledRequestKeptUntilReleased; here only if sync.Pool hands it
// to the next request, which it did not in three tries.)
func TestLeanSidecarResumeStale(t *testing.T) {
	set := resourcesFor(300, "v1")
	have := recordedHave(t, set)
	var stale typeDigest
	for name := range have[resourcev3.ClusterType] {
		have[resourcev3.ClusterType][name] = "stale"
		stale.add([]byte(name))
		break
	}
	// Names that are gone make the clusters' request the largest, so
	// the next one's buffer could be the same if given back too soon.
	var gone typeDigest
	for i := range 1000 {
		name := fmt.Sprintf("gone-%d", i)
		have[resourcev3.ClusterType][name] = "1"
		gone.add([]byte(name))
	}
	initial, err := marshalInitial(have)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range initial {
		if len(b) < 64<<10 && adsTypes[i] != resourcev3.ListenerType && adsTypes[i] != resourcev3.RouteType {
			t.Fatalf("first request of %s: %d bytes, not beyond 64 KiB", adsTypes[i], len(b))
		}
	}
	srv, addr := startServer(t, xds.Options{}, nil)
	got := make(chan deltaResponse, 8)
	f := leanFleet(addr, &sidecar{have: have, initial: initial, seen: func(r *deltaResponse) {
		got <- deltaResponse{typeURL: bytes.Clone(r.typeURL), resources: r.resources, removed: r.removed}
	}})
	defer f.stop()
	waitFor(t, time.Minute, "the sidecar's first request", func() bool {
		return metric(t, srv.Registry(), "metamesh_controlplane_xds_connected_proxies", nil) == 1
	})
	time.Sleep(100 * time.Millisecond) // its other first requests read too, most likely
	srv.Update(set)
	select {
	case r := <-got:
		if string(r.typeURL) != resourcev3.ClusterType || r.resources != stale || r.removed != gone {
			t.Fatalf("got %s: %+v, removed %+v; want %s: %+v, removed %+v", r.typeURL, r.resources, r.removed,
				resourcev3.ClusterType, stale, gone)
		}
	case <-time.After(time.Minute):
		t.Fatal("no response within a minute")
	}
	waitFor(t, time.Minute, "the ACK", func() bool {
		return metric(t, srv.Registry(), "metamesh_controlplane_xds_acks_total", nil) == 1
	})
	select {
	case r := <-got:
		t.Errorf("another response: %s: %+v", r.typeURL, r.resources)
	default:
	}
}

// recordedHave is what a proxy synced with set has: the names and
// versions a control plane serving set sends.
func recordedHave(t *testing.T, set *xdsapi.Resources) map[string]map[string]string {
	t.Helper()
	srv, addr, stop := startStoppable(t, xds.Options{}, nil)
	defer stop()
	srv.Update(set)
	waitFor(t, time.Minute, "the first publish", srv.Ready)
	have := map[string]map[string]string{}
	rec := &fleet{acked: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	rec.cancel = cancel
	rec.add(ctx, addr, "recorder", &sidecar{record: func(typeURL string, r *discoveryv3.Resource) {
		if have[typeURL] == nil {
			have[typeURL] = map[string]string{}
		}
		have[typeURL][r.GetName()] = r.GetVersion()
	}})
	defer rec.stop()
	if err := rec.waitRoutes(nil, srv.Versions()["route"], time.Minute); err != nil {
		t.Fatal(err)
	}
	return have
}
