package xds_test

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// The scale of the BenchmarkSidecar* benchmarks (issue 22's targets:
// 2,000 sidecars × 2,000 services, scopes of 50 services).
var (
	benchSidecars = flag.Int("xds.sidecars", 2000, "simulated sidecars in the BenchmarkSidecar* benchmarks")
	benchScope    = flag.Int("xds.scope", 50, "services each sidecar sees in BenchmarkSidecarOneServiceChange")
)

// sidecar is a simulated proxy on delta ADS, as metamesh proxies are by
// default: its own connection, a wildcard subscription to every type, an
// ACK for each response as it arrives. It decodes a response's envelope
// only (envelopeCodec), not its resources: the simulated sidecars share
// the benchmark's 2 cores with the control plane, and real ones don't.
type sidecar struct {
	route atomic.Pointer[string] // the route version last ACKed
	acks  atomic.Int64
	// have, if set before start, is sent as initial_resource_versions;
	// record, if set, gets the names and versions received.
	have   map[string]map[string]string
	record func(typeURL string, r *discoveryv3.Resource)
}

// fleet is the simulated sidecars of a benchmark.
type fleet struct {
	sidecars []*sidecar
	acked    chan struct{} // a signal after ACKs, lossy
	wg       sync.WaitGroup
	cancel   context.CancelFunc
}

// startFleet connects a sidecar for each node, all at once.
func startFleet(b *testing.B, addr string, nodes []string, have map[string]map[string]string) *fleet {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{acked: make(chan struct{}, 1), cancel: cancel}
	for _, node := range nodes {
		sc := &sidecar{have: have}
		f.sidecars = append(f.sidecars, sc)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := sc.run(ctx, addr, node, f.acked); err != nil && ctx.Err() == nil {
				b.Errorf("sidecar %s: %v", node, err)
			}
		}()
	}
	return f
}

func (f *fleet) stop() {
	f.cancel()
	f.wg.Wait()
}

func (sc *sidecar) run(ctx context.Context, addr, node string, acked chan struct{}) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return err
	}
	defer conn.Close()
	var opts []grpc.CallOption
	if sc.record == nil {
		opts = append(opts, grpc.ForceCodecV2(envelopeCodec{}))
	}
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx, opts...)
	if err != nil {
		return err
	}
	for i, typ := range adsTypes {
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typ, InitialResourceVersions: sc.have[typ]}
		if i == 0 {
			req.Node = &corev3.Node{Id: node}
		}
		if err := st.Send(req); err != nil {
			return err
		}
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		if sc.record != nil {
			for _, r := range resp.GetResources() {
				sc.record(resp.GetTypeUrl(), r)
			}
		}
		if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}); err != nil {
			return err
		}
		if resp.GetTypeUrl() == resourcev3.RouteType {
			v := resp.GetSystemVersionInfo()
			sc.route.Store(&v)
		}
		sc.acks.Add(1)
		select {
		case acked <- struct{}{}:
		default:
		}
	}
}

// envelopeCodec is gRPC's proto codec, except that it decodes a
// DeltaDiscoveryResponse's envelope only: its version, type, nonce and
// removed names, not its resources.
type envelopeCodec struct{}

var protoCodec = encoding.GetCodecV2("proto")

func (envelopeCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }
func (envelopeCodec) Name() string                           { return "proto" }

func (envelopeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	resp, ok := v.(*discoveryv3.DeltaDiscoveryResponse)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	fields := resp.ProtoReflect().Descriptor().Fields()
	resources := fields.ByName("resources").Number()
	b := data.Materialize()
	var envelope []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return protowire.ParseError(m)
		}
		if num != resources {
			envelope = append(envelope, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return proto.Unmarshal(envelope, resp)
}

// waitRoutes waits until every sidecar of idx (all if nil) has ACKed
// route version want() (re-read each time: a push is asynchronous).
func (f *fleet) waitRoutes(b *testing.B, idx []int, want func() string, within time.Duration) {
	if idx == nil {
		idx = make([]int, len(f.sidecars))
		for i := range idx {
			idx[i] = i
		}
	}
	deadline := time.Now().Add(within)
	for {
		v, all := want(), true
		for _, i := range idx {
			if got := f.sidecars[i].route.Load(); got == nil || *got != v || v == "" {
				all = false
				break
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the sidecars did not ACK route version %s within %v", v, within)
		}
		select {
		case <-f.acked:
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (f *fleet) acks() int64 {
	var n int64
	for _, sc := range f.sidecars {
		n += sc.acks.Load()
	}
	return n
}

// liveHeap is the heap left after two collections (the first moves
// gRPC's pooled buffers to sync.Pool's victim cache, the second frees
// them).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// peakHeap samples the heap's live and not yet collected objects every
// 10 ms until stopped, and returns the highest.
func peakHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done, peak := make(chan struct{}), make(chan uint64)
	go func() {
		var high uint64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			high = max(high, sample[0].Value.Uint64())
			select {
			case <-done:
				peak <- high
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-peak }
}

func sidecarNodes(n int, ns func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("sidecar-%04d.%s", i, ns(i))
	}
	return out
}

const mib = 1 << 20

// BenchmarkSidecarFullPush is issue 22's first target: 2,000 sidecars
// (delta, one view) × 2,000 services; one op is a MetaRouter change on
// every service, from Update to every sidecar having ACKed the new route
// version, the debounce included. It reports the control plane's memory
// per connected sidecar (the live heap with the sidecars connected minus
// before, over their number; the simulated sidecars' own gRPC buffers are
// in the same process, so this is an upper bound), the live heap after
// the pushes, and the peak heap during them.
func BenchmarkSidecarFullPush(b *testing.B) {
	n, services := *benchSidecars, *benchServices
	sets := [3]*xdsapi.Resources{resourcesFor(services, "v1"), resourcesFor(services, "v2"), resourcesFor(services, "v3")}
	srv, addr := startServer(b, xds.Options{Log: zap.NewNop()}, nil)
	srv.Update(sets[0])
	for !srv.Ready() {
		time.Sleep(time.Millisecond)
	}
	before := liveHeap()
	f := startFleet(b, addr, sidecarNodes(n, func(int) string { return "default" }), nil)
	defer f.stop()
	route := func() string { return srv.Versions()["route"] }
	f.waitRoutes(b, nil, route, 5*time.Minute)
	connected := liveHeap()

	b.ReportAllocs()
	var total time.Duration
	var peak uint64
	ops := 0
	for b.Loop() {
		ops++
		old := route()
		stopPeak := peakHeap()
		t0 := time.Now()
		srv.Update(sets[ops%3])
		f.waitRoutes(b, nil, func() string {
			if v := route(); v != old {
				return v
			}
			return ""
		}, 5*time.Minute)
		total += time.Since(t0)
		peak = max(peak, stopPeak())
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(ops), "ms-to-all-acked")
	b.ReportMetric(float64(connected-before)/float64(n)/1024, "KiB-per-sidecar")
	b.ReportMetric(float64(peak)/mib, "MiB-peak-heap")
	b.ReportMetric(float64(liveHeap())/mib, "MiB-live-heap")
}

// BenchmarkSidecarOneServiceChange is issue 22's scoped target: 2,000
// services in namespaces of 50 (-xds.scope), each namespace a view; the
// 2,000 sidecars spread over the namespaces. One op changes one service's
// MetaRouter: from UpdateViews to every sidecar of its namespace having
// ACKed, the debounce included; other-acks counts the responses the other
// sidecars got meanwhile (none expected).
func BenchmarkSidecarOneServiceChange(b *testing.B) {
	n, services, scope := *benchSidecars, *benchServices, *benchScope
	namespaces := services / scope
	nsName := func(j int) string { return fmt.Sprintf("ns%03d", j) }
	canary := map[int]string{}
	canaryOf := func(i int) string {
		if c, ok := canary[i]; ok {
			return c
		}
		return "v1"
	}
	viewOf := func(j int) *xdsapi.Resources {
		return translate.Translate(serviceRange(j*scope, (j+1)*scope, canaryOf), translate.Options{}).Resources
	}
	views := &xdsapi.Views{Default: &xdsapi.Resources{}, Namespaces: map[string]*xdsapi.Resources{}}
	for j := range namespaces {
		views.Namespaces[nsName(j)] = viewOf(j)
	}
	srv, addr := startServer(b, xds.Options{Log: zap.NewNop()}, nil)
	srv.UpdateViews(views)
	for !srv.Ready() {
		time.Sleep(time.Millisecond)
	}
	nodes := sidecarNodes(n, func(i int) string { return nsName(i % namespaces) })
	f := startFleet(b, addr, nodes, nil)
	defer f.stop()
	for j := range namespaces {
		var idx []int
		for i := j; i < n; i += namespaces {
			idx = append(idx, i)
		}
		f.waitRoutes(b, idx, func() string { return srv.VersionsFor(nodes[j])["route"] }, 5*time.Minute)
	}

	b.ReportAllocs()
	var total time.Duration
	var others int64
	ops := 0
	for b.Loop() {
		ops++
		svc := (ops * 7919) % services
		j := svc / scope
		canary[svc] = map[string]string{"v1": "v2", "v2": "v1"}[canaryOf(svc)]
		next := &xdsapi.Views{Default: views.Default, Namespaces: maps.Clone(views.Namespaces)}
		next.Namespaces[nsName(j)] = viewOf(j)
		views = next
		var idx []int
		for i := j; i < n; i += namespaces {
			idx = append(idx, i)
		}
		old := srv.VersionsFor(nodes[j])["route"]
		acksBefore, seenBefore := f.acks(), int64(0)
		for _, i := range idx {
			seenBefore += f.sidecars[i].acks.Load()
		}
		t0 := time.Now()
		srv.UpdateViews(next)
		f.waitRoutes(b, idx, func() string {
			if v := srv.VersionsFor(nodes[j])["route"]; v != old {
				return v
			}
			return ""
		}, time.Minute)
		total += time.Since(t0)
		var seen int64
		for _, i := range idx {
			seen += f.sidecars[i].acks.Load()
		}
		others += (f.acks() - acksBefore) - (seen - seenBefore)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(ops), "ms-to-acked")
	b.ReportMetric(float64(others)/float64(ops), "other-acks/op")
	b.ReportMetric(float64(liveHeap())/mib, "MiB-live-heap")
}

// BenchmarkSidecarReconnectStorm is issue 22's storm target: a fresh
// control plane of 2,000 services, and 2,000 sidecars connecting at
// once. One op is from the sidecars' start to every one having ACKed;
// fresh: sidecars that have nothing (the whole config each, the worst
// case); resume: sidecars that name what they have
// (initial_resource_versions, a control-plane restart with the config
// unchanged: nothing is sent). The peak heap is sampled during the ops.
func BenchmarkSidecarReconnectStorm(b *testing.B) {
	n, services := *benchSidecars, *benchServices
	set := resourcesFor(services, "v1")
	nodes := sidecarNodes(n, func(int) string { return "default" })
	start := func(b *testing.B) (*xds.Server, string, func()) {
		srv, addr, stop := startStoppable(b, xds.Options{Log: zap.NewNop()}, nil)
		srv.Update(set)
		for !srv.Ready() {
			time.Sleep(time.Millisecond)
		}
		return srv, addr, stop
	}
	// What a synced sidecar has, for resume.
	have := map[string]map[string]string{}
	{
		srv, addr, stop := start(b)
		f := &fleet{acked: make(chan struct{}, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		f.cancel = cancel
		sc := &sidecar{record: func(typeURL string, r *discoveryv3.Resource) {
			if have[typeURL] == nil {
				have[typeURL] = map[string]string{}
			}
			have[typeURL][r.GetName()] = r.GetVersion()
		}}
		f.sidecars = append(f.sidecars, sc)
		f.wg.Add(1)
		go func() { defer f.wg.Done(); _ = sc.run(ctx, addr, "recorder", f.acked) }()
		f.waitRoutes(b, nil, func() string { return srv.Versions()["route"] }, time.Minute)
		f.stop()
		stop()
	}
	for _, bc := range []struct {
		name string
		have map[string]map[string]string
	}{{"fresh", nil}, {"resume", have}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var total time.Duration
			var peak uint64
			var responses float64
			ops := 0
			for b.Loop() {
				b.StopTimer()
				srv, addr, stop := start(b)
				runtime.GC()
				stopPeak := peakHeap()
				b.StartTimer()
				ops++
				t0 := time.Now()
				f := startFleet(b, addr, nodes, bc.have)
				if bc.have == nil {
					f.waitRoutes(b, nil, func() string { return srv.Versions()["route"] }, 5*time.Minute)
				} else {
					waitConnected(b, srv, n)
				}
				total += time.Since(t0)
				b.StopTimer()
				peak = max(peak, stopPeak())
				f.stop()
				responses += metric(b, srv.Registry(), "metamesh_controlplane_xds_responses_total", nil)
				stop()
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(ops), "ms-to-all-synced")
			b.ReportMetric(responses/float64(ops), "responses/op")
			b.ReportMetric(float64(peak)/mib, "MiB-peak-heap")
		})
	}
}

// waitConnected waits until n proxies have a stream open and their first
// request handled.
func waitConnected(b *testing.B, srv *xds.Server, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for metric(b, srv.Registry(), "metamesh_controlplane_xds_connected_proxies", nil) != float64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d sidecars not connected within 5 min", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
