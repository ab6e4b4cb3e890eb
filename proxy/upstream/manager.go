package upstream

import (
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/wire"
)

type poolKey struct {
	addr  string
	codec protocols.Codec
	tls   string // Options.TLSKey
}

// Manager holds every pool of a proxy. Pools are keyed by host address,
// codec and TLS settings and live across config snapshots, so a route or endpoint change
// never closes a connection that is still wanted.
type Manager struct {
	log     *zap.Logger
	stats   Stats
	timeout atomic.Int64 // the default timeout, in nanoseconds (sweep.go)

	mu    sync.Mutex
	pools map[poolKey]*Pool
	loops *wire.Loops // given to pools made from now on (loop.go)
}

// NewManager returns an empty manager whose calls time out after
// DefaultTimeout.
func NewManager(log *zap.Logger, stats Stats) *Manager {
	m := &Manager{log: log, stats: stats, pools: make(map[poolKey]*Pool)}
	m.timeout.Store(int64(DefaultTimeout))
	return m
}

// Pool returns the pool for addr, codec and opts.TLSKey, creating it with
// opts.
func (m *Manager) Pool(addr string, codec protocols.Codec, opts Options) *Pool {
	k := poolKey{addr, codec, opts.TLSKey}
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.pools[k]
	if !ok {
		p = newPool(addr, codec, m.log, m.stats, &m.timeout, m.loops, opts)
		m.pools[k] = p
		return p
	}
	if want := p.withDefaults(opts); p.options() != want {
		p.SetOptions(want)
	}
	return p
}

// Retain drains the pools whose key keep rejects (hosts, codecs or TLS
// settings no longer in any cluster of the current snapshot).
func (m *Manager) Retain(keep func(addr string, codec protocols.Codec, tlsKey string) bool) {
	m.mu.Lock()
	var gone []*Pool
	for k, p := range m.pools {
		if !keep(k.addr, k.codec, k.tls) {
			gone = append(gone, p)
			delete(m.pools, k)
		}
	}
	m.mu.Unlock()
	for _, p := range gone {
		p.Drain()
	}
}

// Drain drains every pool.
func (m *Manager) Drain() { m.Retain(func(string, protocols.Codec, string) bool { return false }) }
