package xds

import (
	"context"
	"crypto/tls"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// ads is the AggregatedDiscoveryService: metamesh's own state-of-the-world
// and delta stream handlers over go-control-plane's generated protos
// (docs/xds.md says why not go-control-plane's cache and servers).
type ads struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	s *Server
}

// StreamAggregatedResources serves state-of-the-world ADS.
func (a ads) StreamAggregatedResources(gs discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	// Headers at once: the proxy knows it reached a control plane even
	// when it is up to date and gets no response.
	if err := gs.SendHeader(nil); err != nil {
		return err
	}
	ss := &sotwStream{stream: &stream{s: a.s, ctx: gs.Context(), protocol: "sotw"}, gs: gs}
	// The proxy's own Secrets (SDS) beside the shared tables.
	d := newSDS(ss.stream)
	defer d.stop()
	flush := func(vw *view) error {
		if err := ss.flush(vw); err != nil {
			return err
		}
		return d.flushSotw(gs)
	}
	return serve(ss.stream, gs.Recv, take(d, d.handleSotw, ss.handle), flush)
}

// DeltaAggregatedResources serves delta (incremental) ADS.
func (a ads) DeltaAggregatedResources(gs discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	if err := gs.SendHeader(nil); err != nil {
		return err
	}
	first, err := a.s.firstWorkOf(gs)
	if err != nil {
		return err
	}
	defer first.release()
	ds := &deltaStream{stream: &stream{s: a.s, ctx: gs.Context(), protocol: "delta"}, gs: gs, first: first}
	d := newSDS(ds.stream)
	defer d.stop()
	flush := func(vw *view) error {
		if err := ds.flush(vw); err != nil {
			return err
		}
		return d.flushDelta(gs)
	}
	recv := func() (*deltaRequest, error) {
		r := &deltaRequest{}
		return r, gs.RecvMsg(r)
	}
	handleSDS := func(r *deltaRequest) error { return d.handleDelta(r.DeltaDiscoveryRequest) }
	return serve(ds.stream, recv, take(d, handleSDS, ds.handle), flush)
}

// firstWorkOf waits for gs's slot for first work (admission.go), until
// gs or the server ends.
func (s *Server) firstWorkOf(gs grpc.ServerStream) (*slot, error) {
	ctx, cancel := context.WithCancel(gs.Context())
	defer cancel()
	stop := context.AfterFunc(s.streamsCtx, cancel)
	defer stop()
	sl, err := s.firstWork(ctx)
	if err != nil && s.streamsCtx.Err() != nil {
		return nil, errShutdown
	}
	return sl, err
}

// windowSize is the gRPC flow-control window of ADS streams and
// connections (GRPCOptions).
const windowSize = 64 << 10

// writeBufferSize is what gRPC gathers of a connection's frames before
// writing them to its socket: 256 KiB, not gRPC's 32 KiB, cuts a full
// push's write system calls (2,000 sidecars × 1.4 MB) from 90,000 to
// 15,000 and its CPU by about a tenth (docs/xds.md#writes).
// gRPC takes the buffer from a pool for a write and gives it back after
// (its default), so 2,000 idle connections hold none.
const writeBufferSize = 256 << 10

// keepaliveTimeout is how long the control plane waits for a proxy to
// answer its keepalive ping. A proxy starved of CPU (a loaded node, or
// one busy applying a storm's config) answers late; dropping it after
// gRPC's usual 10 s made it reconnect and ask for its config again,
// feeding the storm that starved it (docs/xds.md#push-storms). A proxy
// that is gone is still noticed within 90 s.
const keepaliveTimeout = 60 * time.Second

// GRPCOptions are the options of the gRPC server ADS runs on, which
// Register requires: the codec sending responses marshaled once for
// every stream (codec.go), TLS (nil: plaintext), keepalives and flow
// control windows. Proxies ping every 30 s (allowed here, where gRPC's
// default refuses pings more often than every 5 min), and a proxy that
// stops answering pings is dropped within 90 s, so its node state does
// not linger (keepaliveTimeout says why not sooner). Writes gather up
// to writeBufferSize, from a pool. The windows are gRPC's initial
// 64 KiB, fixed: gRPC would otherwise grow each connection's receive
// window as it measures the link, and a proxy's requests (ACKs, and on
// reconnection the names it has) need no more.
func GRPCOptions(tlsCfg *tls.Config) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(codec{}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 15 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: keepaliveTimeout}),
		grpc.InitialWindowSize(windowSize),
		grpc.InitialConnWindowSize(windowSize),
		grpc.WriteBufferSize(writeBufferSize),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	return opts
}
