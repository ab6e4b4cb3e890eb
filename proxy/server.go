package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/accesslog"
	"github.com/metamesh/metamesh/proxy/certs"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/mtls"
	"github.com/metamesh/metamesh/proxy/rediscluster"
	"github.com/metamesh/metamesh/proxy/tracing"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// Server is one proxy: its listeners, its upstream pools and the config
// snapshot they all read.
type Server struct {
	log     *zap.Logger
	metrics *metrics.Proxy
	pools   *upstream.Manager
	redis   *rediscluster.Registry

	snap  atomic.Pointer[config.Config]
	ready atomic.Bool

	applyMu   sync.Mutex
	builder   *config.Builder
	mesh      *mtls.Mesh // mutual TLS between proxies (secure.go)
	listeners map[string]*listener
	stopped   bool // Shutdown began: Apply refuses
	// captures are the capture ports (mesh mode); unbound, the service
	// listeners are served through them only.
	captures []*captureListener
	unbound  bool

	connMu   sync.Mutex
	conns    map[*downstream]struct{}
	sniffing map[net.Conn]struct{} // waiting for their first byte (secure)
	open     atomic.Int64          // len(conns), read without connMu
	draining bool
	limits   atomic.Pointer[limits]
	tracer   atomic.Pointer[tracing.Tracer] // nil: off
	clients  atomic.Uint64                  // client connections accepted, for affinity
	loops    atomic.Pointer[wire.Loops]     // nil: goroutine mode (iomode.go)
}

// New returns a proxy with no config; it serves nothing until Apply.
func New(log *zap.Logger, m *metrics.Proxy) *Server {
	b := config.NewBuilder()
	b.AccessLogs = accesslog.NewSinks(m.AccessLogDropped.Inc)
	b.Mesh = mtls.New(certs.NewStore(), m.MTLSHandshakes)
	s := &Server{
		log:       log,
		metrics:   m,
		builder:   b,
		mesh:      b.Mesh,
		listeners: map[string]*listener{},
		conns:     map[*downstream]struct{}{},
		sniffing:  map[net.Conn]struct{}{},
	}
	s.SetLimits(DefaultLimits())
	m.Register(hostCollector{s})
	m.Register(s.readyGauge())
	m.Register(s.loopHandoffs())
	m.Register(s.loopRingEnters())
	s.pools = upstream.NewManager(log, s.upstreamStats())
	s.redis = rediscluster.NewRegistry(log, m.RedisCluster)
	return s
}

// SetBindListeners says whether Apply binds the listeners' addresses
// (default true). A sidecar with outbound capture serves its listeners
// through the capture port and binds none: the service ports in its own
// pod are its application's. Call it before the first Apply.
func (s *Server) SetBindListeners(bind bool) {
	s.applyMu.Lock()
	s.unbound = !bind
	s.applyMu.Unlock()
}

// SetTracer turns tracing on (nil: off): every request from then on gets
// a span from t.
func (s *Server) SetTracer(t *tracing.Tracer) { s.tracer.Store(t) }

// Snapshot returns the config in force, or nil before the first Apply.
func (s *Server) Snapshot() *config.Config { return s.snap.Load() }

// Ready reports whether a config has been applied.
func (s *Server) Ready() bool { return s.ready.Load() }

// RedisClusters returns the slot maps of the Redis Clusters in use
// (docs/redis-cluster.md), by cluster name.
func (s *Server) RedisClusters() []rediscluster.View { return s.redis.Views() }

// Metrics returns the proxy's series.
func (s *Server) Metrics() *metrics.Proxy { return s.metrics }

// Apply validates res and, if it is valid and every new listener could
// bind, makes it the config in force. On error the previous config stays
// in force untouched. Existing connections are never closed by Apply;
// listeners that disappear stop accepting and their connections finish.
func (s *Server) Apply(res *xdsapi.Resources) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.stopped {
		return errors.New("proxy: shutting down")
	}
	snap, err := s.builder.Build(res)
	if err != nil {
		return err
	}
	opened, adopted, err := s.bindNew(snap)
	if err != nil {
		return err
	}
	s.builder.Commit()
	s.retireSeries(s.snap.Load(), snap)
	s.snap.Store(snap)
	for name, l := range s.listeners {
		if nl, ok := snap.Listeners[name]; ok && nl.Bind && nl.Address == l.addr {
			l.cfg.Store(nl)
			continue
		}
		delete(s.listeners, name)
		if newName, ok := adopted[l]; ok {
			l.cfg.Store(snap.Listeners[newName])
			continue
		}
		l.close()
	}
	for l, name := range adopted {
		s.listeners[name] = l
	}
	for name, l := range opened {
		s.listeners[name] = l
		go l.serve()
	}
	s.redis.Retain(snap.Clusters)
	s.pools.Retain(func(addr string, codec protocols.Codec, tlsKey string) bool {
		return used(snap, addr, codec, tlsKey) || s.redis.Uses(addr, codec, tlsKey)
	})
	s.mesh.Retain(func(cluster string) bool { return snap.Clusters[cluster] != nil })
	s.ready.Store(true)
	return nil
}

// bindNew opens the sockets of listeners that are new or moved. A
// listener renamed on the same address keeps its socket (adopted maps it
// to its new name), so a rename never fails to bind its own port. If a
// bind fails, those opened are closed again and nothing changes.
func (s *Server) bindNew(snap *config.Config) (opened map[string]*listener, adopted map[*listener]string, err error) {
	opened, adopted = map[string]*listener{}, map[*listener]string{}
	if s.unbound {
		return opened, adopted, nil
	}
	byAddr := map[string]*listener{}
	for name, l := range s.listeners {
		if nl, kept := snap.Listeners[name]; !kept || !nl.Bind || nl.Address != l.addr {
			byAddr[l.addr] = l // its socket is free for another name
		}
	}
	for name, cfg := range snap.Listeners {
		if !cfg.Bind {
			continue // served through the capture ports only
		}
		if l, ok := s.listeners[name]; ok && l.addr == cfg.Address {
			continue
		}
		if l, ok := byAddr[cfg.Address]; ok {
			adopted[l] = name
			delete(byAddr, cfg.Address)
			continue
		}
		ln, err := net.Listen("tcp", cfg.Address)
		if err != nil && s.listeners[name] != nil {
			err = fmt.Errorf("%w (moving listener %s from %s)", err, name, s.listeners[name].addr)
		}
		if err != nil {
			for _, l := range opened {
				_ = l.ln.Close()
			}
			return nil, nil, fmt.Errorf("listener %s: address: %w", name, err)
		}
		opened[name] = newListener(s, ln, cfg)
	}
	return opened, adopted, nil
}

// used reports whether any cluster reachable through a listener of snap
// still wants a pool for addr, codec and TLS settings.
func used(snap *config.Config, addr string, codec protocols.Codec, tlsKey string) bool {
	codecInUse := false
	if v, ok := codec.(protocols.Variant); ok {
		codec = v.BaseCodec()
	}
	for _, l := range snap.Listeners {
		if l.Codec == codec {
			codecInUse = true
			break
		}
	}
	if !codecInUse {
		return false
	}
	for _, c := range snap.Clusters {
		if c.TLSKey != tlsKey && (c.Mesh == nil || c.Mesh.Key != tlsKey) {
			continue
		}
		for _, e := range c.Endpoints {
			if e.Host.Addr == addr {
				return true
			}
		}
	}
	return false
}

// ListenerAddr returns the bound address of a listener (useful when the
// config asked for port 0), or "" if there is none by that name.
func (s *Server) ListenerAddr(name string) string {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if l, ok := s.listeners[name]; ok {
		return l.ln.Addr().String()
	}
	return ""
}

// Shutdown drains the proxy: listeners stop accepting; each client gets
// its protocol's drain notice (Dubbo's readonly event) and its connection
// is read on for a short grace, until what the client had sent is read
// and answered (a client sees the connection close after its last
// reply); requests in flight get their responses until ctx ends, then
// every connection is closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.applyMu.Lock()
	s.stopped = true
	for name, l := range s.listeners {
		l.close()
		delete(s.listeners, name)
	}
	for _, c := range s.captures {
		c.stop()
	}
	s.applyMu.Unlock()
	s.connMu.Lock()
	s.draining = true
	for nc := range s.sniffing { // no request yet: nothing to drain
		_ = nc.Close()
	}
	draining := make([]*downstream, 0, len(s.conns))
	for d := range s.conns {
		draining = append(draining, d)
	}
	s.connMu.Unlock()
	grace := drainReadGrace
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(dl)/4)
	}
	for _, d := range draining {
		d.stopReading(grace)
	}

	var err error
	for _, d := range draining {
		select {
		case <-d.readDone:
		case <-ctx.Done():
			err = fmt.Errorf("drain: client connections still being read: %w", ctx.Err())
		}
		if err != nil {
			break
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for err == nil && s.inflight() > 0 {
		select {
		case <-ctx.Done():
			err = fmt.Errorf("drain: %d requests still in flight: %w", s.inflight(), ctx.Err())
		case <-tick.C:
		}
	}
	s.connMu.Lock()
	conns := make([]*downstream, 0, len(s.conns))
	for d := range s.conns {
		conns = append(conns, d)
	}
	s.connMu.Unlock()
	for _, d := range conns {
		d.close()
	}
	for _, c := range s.captures {
		c.closeRelays()
	}
	s.redis.Stop()
	s.pools.Drain()
	s.applyMu.Lock()
	s.builder.CloseRateLimitServices()
	s.applyMu.Unlock()
	// Every request is done: what they logged goes out before the process
	// does, also when the drain ran out of time.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), accessLogFlushTimeout)
	defer cancel()
	if ferr := s.builder.AccessLogs.Flush(fctx); err == nil {
		err = ferr
	}
	return err
}

// drainReadGrace is how long a draining connection is read on after its
// drain notice, for what the client sent before it saw the notice (a
// quarter of the drain's time at most).
const drainReadGrace = 500 * time.Millisecond

// accessLogFlushTimeout bounds the wait for access log lines at shutdown.
const accessLogFlushTimeout = 5 * time.Second

func (s *Server) inflight() int64 {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	var n int64
	for d := range s.conns {
		n += d.inflight.Load()
	}
	return n
}

func (s *Server) track(d *downstream) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.draining {
		return false
	}
	s.conns[d] = struct{}{}
	s.open.Store(int64(len(s.conns)))
	return true
}

func (s *Server) untrack(d *downstream) {
	s.connMu.Lock()
	delete(s.conns, d)
	s.open.Store(int64(len(s.conns)))
	s.connMu.Unlock()
}
