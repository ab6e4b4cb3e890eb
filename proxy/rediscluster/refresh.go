package rediscluster

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/upstream"
)

// MinRefreshGap is the least time between two reads of a slot map: a
// burst of MOVED replies or connection failures is one refresh.
const MinRefreshGap = 100 * time.Millisecond

// QueryTimeout bounds one slot map read from one node, beyond the dial.
const QueryTimeout = 2 * time.Second

// refresher is a Topology's background reader of the slot map.
type refresher struct {
	kick chan struct{} // a refresh is wanted (buffered: asks coalesce)
	stop chan struct{}
	done chan struct{}
}

// Refresh asks for the slot map to be read again soon (at most once per
// MinRefreshGap); it never blocks.
func (t *Topology) Refresh() {
	select {
	case t.ref.kick <- struct{}{}:
	default:
	}
}

// run reads the slot map at once, then on every Refresh and every
// refresh interval, until stop.
func (t *Topology) run(env *env) {
	defer close(t.ref.done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	var last time.Time
	for {
		select {
		case <-t.ref.stop:
			return
		case <-t.ref.kick:
		case <-timer.C:
		}
		if wait := MinRefreshGap - time.Since(last); wait > 0 {
			select {
			case <-t.ref.stop:
				return
			case <-time.After(wait):
			}
		}
		select { // asks made meanwhile are served by this read
		case <-t.ref.kick:
		default:
		}
		last = time.Now()
		t.refreshOnce(env)
		select {
		case <-t.read:
		default:
			close(t.read)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(t.opts.Load().RefreshInterval)
	}
}

// refreshOnce reads the map from the first node that answers: the known
// primaries, then the seeds, then the replicas.
func (t *Topology) refreshOnce(env *env) {
	var errs []error
	for _, addr := range t.candidates() {
		shards, err := t.query(env, addr)
		if err == nil && len(shards) == 0 {
			err = errors.New("the node serves no slots")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		covered := t.install(shards)
		env.metrics.SlotsCovered.WithLabelValues(t.name).Set(float64(covered))
		env.metrics.Refreshes.WithLabelValues(t.name, "ok").Inc()
		return
	}
	env.metrics.Refreshes.WithLabelValues(t.name, "error").Inc()
	env.log.Warn("could not read a Redis Cluster's slot map", zap.String("cluster", t.name), zap.Error(errors.Join(errs...)))
}

// candidates lists the addresses to read the map from, each once.
func (t *Topology) candidates() []string {
	var prim, repl []string
	if m := t.m.Load(); m != nil {
		seen := map[*shard]bool{}
		for i := range m.slots {
			s := m.slots[i].Load()
			if s == nil || seen[s] {
				continue
			}
			seen[s] = true
			prim = append(prim, s.primary.Addr)
			for _, r := range s.replicas {
				repl = append(repl, r.Addr)
			}
		}
	}
	out := prim
	for _, s := range t.opts.Load().Seeds {
		out = append(out, s.Addr)
	}
	out = append(out, repl...)
	var uniq []string
	for _, a := range out {
		if !slices.Contains(uniq, a) {
			uniq = append(uniq, a)
		}
	}
	return uniq
}

// query reads the slot map from the node at addr: the codec's handshake
// (the upstream AUTH) first, then CLUSTER SHARDS, or CLUSTER SLOTS when
// the node doesn't know SHARDS (Redis before 7).
func (t *Topology) query(env *env, addr string) ([]redis.Shard, error) {
	o := t.opts.Load()
	nc, err := upstream.Dial(addr, o.ConnectTimeout, o.TLS)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	if err := nc.SetDeadline(time.Now().Add(QueryTimeout)); err != nil {
		return nil, err
	}
	rd := &replyReader{nc: nc, codec: env.codec}
	frames, n := env.codec.Handshake(nil)
	if _, err := nc.Write(append(frames, redis.ClusterShards...)); err != nil {
		return nil, err
	}
	for i := range n {
		r, err := rd.next()
		if err != nil {
			return nil, err
		}
		if r.Kind == protocols.KindError {
			return nil, fmt.Errorf("handshake request %d refused: %q", i, r.Raw)
		}
	}
	r, err := rd.next()
	if err != nil {
		return nil, err
	}
	if r.Kind != protocols.KindError {
		return redis.ParseShards(r.Raw)
	}
	if _, err := nc.Write(redis.ClusterSlots); err != nil {
		return nil, err
	}
	if r, err = rd.next(); err != nil {
		return nil, err
	}
	return redis.ParseSlots(r.Raw)
}

// env is what a Topology's refreshes need from the proxy.
type env struct {
	log     *zap.Logger
	metrics *metrics.RedisCluster
	codec   *redis.Codec
}

// seedsOf turns endpoints into the Hosts reads start from.
func seedsOf(eps []cluster.Endpoint) []*cluster.Host {
	out := make([]*cluster.Host, 0, len(eps))
	for _, e := range eps {
		out = append(out, e.Host)
	}
	return out
}
