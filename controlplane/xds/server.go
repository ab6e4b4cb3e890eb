package xds

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// Defaults of Options.
const (
	DefaultDebounce = 100 * time.Millisecond
	DefaultMaxDelay = time.Second
)

// Options configure a Server.
type Options struct {
	// Debounce is the quiet time after an Update before the latest set is
	// published (DefaultDebounce if zero): a burst of updates is one push.
	// An update after a quiet period of Debounce is published at once (the
	// leading edge), and the updates right after it are debounced: a lone
	// change goes out without waiting, a burst costs one push more.
	Debounce time.Duration
	// MaxDelay bounds how long a steady stream of updates can hold a push
	// back, from the first update of a burst (DefaultMaxDelay if zero).
	MaxDelay time.Duration
	// Log gets one line per push, per refused snapshot and per NACK (nop
	// if nil).
	Log *zap.Logger
	// InflightBytes bounds the bytes of responses made for one stream
	// alone (not the tables and diffs shared by every stream), sent and
	// not yet answered by their proxies, across all streams
	// (DefaultInflightBytes if zero; see docs/xds.md).
	InflightBytes int64
	// Registerer gets the server's metrics (a new registry if nil; see
	// Registry).
	Registerer prometheus.Registerer
}

// Server is the ADS server. Create it with New, register it on a gRPC
// server with Register, run it (Run) beside that gRPC server, and feed it
// with Update or UpdateViews.
type Server struct {
	log       *zap.Logger
	debounce  time.Duration
	maxDelay  time.Duration
	registry  *prometheus.Registry // nil when Options.Registerer was given
	metrics   *metrics
	admission *admission
	// firstWorkSlots are the slots of delta streams' first work
	// (firstWorkSlots).
	firstWorkSlots *semaphore.Weighted
	reg            prometheus.Registerer
	issuer         *issuer // nil: no workload certificates (IssueCertificates)
	// streamsCtx ends every stream when Run returns.
	streamsCtx context.Context
	endStreams context.CancelFunc

	latest atomic.Pointer[xdsapi.Views] // newest update, not yet published
	kick   chan struct{}
	ready  atomic.Bool
	// state are the views in force; only publishLoop replaces them.
	state atomic.Pointer[published]

	// mu guards the per-node state.
	mu    sync.Mutex
	nodes map[string]*ProxyStatus
}

// New returns a server, not yet publishing: Run runs it.
func New(o Options) *Server {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.InflightBytes <= 0 {
		o.InflightBytes = DefaultInflightBytes
	}
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	s := &Server{
		log:      o.Log,
		debounce: o.Debounce,
		maxDelay: o.MaxDelay,
		kick:     make(chan struct{}, 1),
		nodes:    map[string]*ProxyStatus{},
	}
	s.state.Store(&published{replaced: make(chan struct{})})
	s.streamsCtx, s.endStreams = context.WithCancel(context.Background())
	reg := o.Registerer
	if reg == nil {
		s.registry = prometheus.NewRegistry()
		reg = s.registry
	}
	s.reg = reg
	s.metrics = newMetrics(reg, s.connected)
	s.admission = newAdmission(o.InflightBytes, s.metrics)
	s.firstWorkSlots = semaphore.NewWeighted(firstWorkSlots)
	return s
}

// Run publishes the updates (see Update) until ctx ends, then ends every
// stream and returns nil. Run it beside the gRPC server the ADS server is
// registered on, and stop both together.
func (s *Server) Run(ctx context.Context) error {
	defer s.endStreams()
	s.publishLoop(ctx)
	return nil
}

// Register serves ADS (state of the world and delta) on g, which must be
// built with GRPCOptions (their codec sends the responses).
func (s *Server) Register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, ads{s: s})
}

// Registry is the registry holding the server's metrics, or nil when
// Options.Registerer was given.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// Ready reports whether a snapshot has been published.
func (s *Server) Ready() bool { return s.ready.Load() }

// Update hands the server a complete new set of resources, the one view
// of every proxy: UpdateViews with res as the Default view.
func (s *Server) Update(res *xdsapi.Resources) {
	s.UpdateViews(&xdsapi.Views{Default: res})
}

// UpdateViews hands the server the complete new resources of every proxy
// namespace (see xdsapi.Views). It returns at once; the views are
// published after the debounce (see Options), replacing any handed
// earlier and not yet published. v and its resources must not be changed
// afterwards.
func (s *Server) UpdateViews(v *xdsapi.Views) {
	s.metrics.updates.Inc()
	s.latest.Store(v)
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// publishLoop publishes an update at once if none was published for the
// debounce time (the leading edge); otherwise it publishes the latest
// update once updates have been quiet for the debounce time, or MaxDelay
// after the first of a burst.
func (s *Server) publishLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // of the burst being debounced; zero: none
	var last time.Time  // of the last publish
	publish := func() {
		first, last = time.Time{}, time.Now()
		if v := s.latest.Swap(nil); v != nil {
			s.publish(v)
		}
	}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.kick:
			now := time.Now()
			if first.IsZero() && now.Sub(last) >= s.debounce {
				publish()
				continue
			}
			if first.IsZero() {
				first = now
			}
			timer.Reset(min(s.debounce, first.Add(s.maxDelay).Sub(now)))
		case <-timer.C:
			publish()
		}
	}
}

// publish builds v's views and, if they are consistent and differ from
// those in force, puts them in force: every stream then sends its proxy
// what it lacks of its view.
func (s *Server) publish(v *xdsapi.Views) {
	start := time.Now()
	prev := s.state.Load()
	pub, err := newPublished(v, prev)
	if err != nil {
		s.metrics.rejected.Inc()
		s.log.Error("snapshot not published; the proxies keep the last one", zap.Error(err))
		return
	}
	if prev.same(pub) {
		s.log.Debug("snapshot unchanged, not pushed")
		return
	}
	s.state.Store(pub)
	close(prev.replaced)
	s.ready.Store(true)
	s.metrics.pushes.Inc()
	s.metrics.pushSeconds.Observe(time.Since(start).Seconds())
	res := v.Default
	s.log.Info("snapshot pushed", zap.Int("proxies", int(s.connected())), zap.Int("views", len(pub.distinct())),
		zap.Int("listeners", len(res.Listeners)), zap.Int("clusters", len(res.Clusters)),
		zap.Int("endpoints", len(res.Endpoints)), zap.Int("routes", len(res.Routes)),
		zap.Any("versions", pub.def.versions()))
}

// versions are vw's versions by short type name.
func (vw *view) versions() map[string]string {
	out := make(map[string]string, len(vw.tables))
	for _, t := range vw.tables {
		out[typeName(t.typeURL)] = t.version
	}
	return out
}

// Versions returns the versions of the Default view in force by type
// (cluster, endpoint, listener, route), or nil before the first push.
func (s *Server) Versions() map[string]string {
	if vw := s.state.Load().def; vw != nil {
		return vw.versions()
	}
	return nil
}
