package rediscluster

import (
	"crypto/tls"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// Options are a Topology's settings, from its cluster in the config in
// force.
type Options struct {
	ReadPolicy      string
	RefreshInterval time.Duration
	Seeds           []*cluster.Host
	ConnectTimeout  time.Duration
	TLS             *tls.Config
	TLSKey          string
}

func optionsOf(cl *cluster.Cluster) *Options {
	return &Options{ReadPolicy: cl.Redis.ReadPolicy, RefreshInterval: cl.Redis.RefreshInterval, Seeds: seedsOf(cl.Endpoints),
		ConnectTimeout: cl.ConnectTimeout, TLS: cl.TLS, TLSKey: cl.TLSKey}
}

type topoKey struct {
	cluster string
	codec   *redis.Codec // its upstream AUTH reads the map
}

type entry struct {
	t   *Topology
	src atomic.Pointer[cluster.Cluster] // the cluster its options are from
	env env
}

// Registry holds a proxy's Redis Cluster topologies: one per cluster
// and codec (the codec's upstream AUTH is sent before reading the map),
// made when a request first needs it and stopped when its cluster leaves
// the config.
type Registry struct {
	log     *zap.Logger
	metrics *metrics.RedisCluster

	all atomic.Pointer[map[topoKey]*entry] // copied on write under mu
	mu  sync.Mutex
	off bool // stopped
}

// NewRegistry returns an empty registry.
func NewRegistry(log *zap.Logger, m *metrics.RedisCluster) *Registry {
	r := &Registry{log: log, metrics: m}
	r.all.Store(&map[topoKey]*entry{})
	return r
}

// Get returns the topology of cl, a cluster with Redis set, for codec
// (a variant's base counts): made and started on first use, its options
// brought up to date when cl is from a newer config. nil once the
// registry is stopped.
func (r *Registry) Get(cl *cluster.Cluster, codec *redis.Codec) *Topology {
	k := topoKey{cl.Name, codec.Base()}
	if e, ok := (*r.all.Load())[k]; ok {
		if e.src.Load() != cl {
			e.t.opts.Store(optionsOf(cl))
			e.src.Store(cl)
		}
		return e.t
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off {
		return nil
	}
	old := *r.all.Load()
	if e, ok := old[k]; ok {
		return e.t
	}
	e := &entry{t: &Topology{name: cl.Name, hosts: map[hostKey]*cluster.Host{},
		ref: refresher{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}, read: make(chan struct{})},
		env: env{log: r.log, metrics: r.metrics, codec: k.codec}}
	e.t.opts.Store(optionsOf(cl))
	e.src.Store(cl)
	next := make(map[topoKey]*entry, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[k] = e
	r.all.Store(&next)
	go e.t.run(&e.env)
	return e.t
}

// Retain stops the topologies whose cluster is not a Redis Cluster in
// clusters (the config now in force).
func (r *Registry) Retain(clusters map[string]*cluster.Cluster) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.all.Load()
	next := make(map[topoKey]*entry, len(old))
	for k, e := range old {
		if cl, ok := clusters[k.cluster]; ok && cl.Redis != nil {
			next[k] = e
			continue
		}
		r.stopEntry(e)
	}
	r.all.Store(&next)
}

func (r *Registry) stopEntry(e *entry) {
	close(e.t.ref.stop)
	<-e.t.ref.done
	r.metrics.SlotsCovered.DeleteLabelValues(e.t.name)
}

// Stop stops every topology; Get returns nil from then on.
func (r *Registry) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.off = true
	for _, e := range *r.all.Load() {
		r.stopEntry(e)
	}
	r.all.Store(&map[topoKey]*entry{})
}

// Uses reports whether a topology still wants connections to addr with
// codec (or a variant of it) and TLS settings tlsKey: the node is one of
// its seeds or nodes. The proxy keeps such pools across config changes.
func (r *Registry) Uses(addr string, codec protocols.Codec, tlsKey string) bool {
	rc, ok := codec.(*redis.Codec)
	if !ok {
		return false
	}
	for k, e := range *r.all.Load() {
		if k.codec == rc.Base() && e.t.opts.Load().TLSKey == tlsKey && e.t.knows(addr) {
			return true
		}
	}
	return false
}

// ShardView is one shard of a slot map, for /clusters.
type ShardView struct {
	Slots    [][2]int `json:"slots"`
	Primary  string   `json:"primary"`
	Replicas []string `json:"replicas,omitempty"`
}

// View is a topology's slot map, for /clusters.
type View struct {
	Cluster     string      `json:"cluster"`
	ReadPolicy  string      `json:"read_policy"`
	RefreshedAt *time.Time  `json:"refreshed_at,omitempty"`
	Covered     int         `json:"slots_covered"`
	Shards      []ShardView `json:"shards"`
}

// Views returns every topology's slot map, by cluster name.
func (r *Registry) Views() []View {
	var out []View
	for _, e := range *r.all.Load() {
		out = append(out, e.t.view())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster < out[j].Cluster })
	return out
}

// view describes t's map in force: the shards by their first slot, each
// with its ranges.
func (t *Topology) view() View {
	v := View{Cluster: t.name, ReadPolicy: t.opts.Load().ReadPolicy, Shards: []ShardView{}}
	m := t.m.Load()
	if m == nil {
		return v
	}
	at := m.at
	v.RefreshedAt = &at
	index := map[*shard]int{}
	var prev *shard
	for i := range m.slots {
		s := m.slots[i].Load()
		if s == nil {
			prev = nil
			continue
		}
		v.Covered++
		j, ok := index[s]
		if !ok {
			j = len(v.Shards)
			index[s] = j
			sv := ShardView{Primary: s.primary.Addr}
			for _, h := range s.replicas {
				sv.Replicas = append(sv.Replicas, h.Addr)
			}
			v.Shards = append(v.Shards, sv)
		}
		if s == prev {
			v.Shards[j].Slots[len(v.Shards[j].Slots)-1][1] = i
		} else {
			v.Shards[j].Slots = append(v.Shards[j].Slots, [2]int{i, i})
		}
		prev = s
	}
	return v
}
