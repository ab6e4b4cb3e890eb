package rediscluster

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/proxy/cluster"
)

// Read policies (Envoy's names): where read-only commands go.
const (
	Master        = "MASTER"
	PreferMaster  = "PREFER_MASTER"
	Replica       = "REPLICA"
	PreferReplica = "PREFER_REPLICA"
	Any           = "ANY"
)

// shard is a primary and its replicas, as one map saw them.
type shard struct {
	primary  *cluster.Host
	replicas []*cluster.Host
}

// slotMap is one reading of the cluster's slot map. A refresh swaps the
// whole map; a MOVED reply corrects one slot of the map in force.
type slotMap struct {
	slots [redis.SlotCount]atomic.Pointer[shard]
	at    time.Time
	// byPrimary finds the shard of a primary the read found (MOVED).
	byPrimary map[*cluster.Host]*shard
}

// covered counts the slots m assigns to a node.
func (m *slotMap) covered() int {
	n := 0
	for i := range m.slots {
		if m.slots[i].Load() != nil {
			n++
		}
	}
	return n
}

// Topology is one Redis Cluster as the proxy sees it: its slot map and
// its nodes' Hosts. Safe for concurrent use.
type Topology struct {
	name string
	m    atomic.Pointer[slotMap]
	opts atomic.Pointer[Options]

	hostMu sync.Mutex
	hosts  map[hostKey]*cluster.Host
	// replicas holds the Hosts that stand for a node as a replica: their
	// connections are set up with READONLY.
	replicas sync.Map // *cluster.Host → struct{}

	ref refresher
	// read is closed once the first read of the map ended, however it
	// ended.
	read chan struct{}
}

// WaitFirstRead waits up to limit for the first read of the slot map to
// end, so the first commands go to their nodes rather than through a
// seed's MOVED (and, for a read policy, to a replica).
func (t *Topology) WaitFirstRead(limit time.Duration) {
	if t.m.Load() != nil {
		return
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-t.read:
	case <-timer.C:
	}
}

type hostKey struct {
	addr    string
	replica bool
}

// host returns the Host of the node at addr in a role, made once.
func (t *Topology) host(addr string, replica bool) *cluster.Host {
	t.hostMu.Lock()
	defer t.hostMu.Unlock()
	k := hostKey{addr, replica}
	if h, ok := t.hosts[k]; ok {
		return h
	}
	h := cluster.NewHost(addr)
	t.hosts[k] = h
	if replica {
		t.replicas.Store(h, struct{}{})
	}
	return h
}

// knows reports whether addr is one of the cluster's nodes or seeds.
func (t *Topology) knows(addr string) bool {
	t.hostMu.Lock()
	_, p := t.hosts[hostKey{addr, false}]
	_, r := t.hosts[hostKey{addr, true}]
	t.hostMu.Unlock()
	if p || r {
		return true
	}
	for _, s := range t.opts.Load().Seeds {
		if s.Addr == addr {
			return true
		}
	}
	return false
}

// IsReplica reports whether h stands for a node as a replica (its
// connections need READONLY).
func (t *Topology) IsReplica(h *cluster.Host) bool {
	_, ok := t.replicas.Load(h)
	return ok
}

// Pick returns the node for a command on slot (-1: a keyless command,
// any primary), a primary unless the command is read-only and the read
// policy says otherwise. Before the first map, or for a slot no map
// covers, it returns a seed, whose MOVED reply will say where to go.
// It returns nil when the policy leaves no node (REPLICA in a shard
// without a reachable replica).
func (t *Topology) Pick(slot int, readonly bool) *cluster.Host {
	m := t.m.Load()
	var s *shard
	if m != nil {
		if slot < 0 {
			slot = rand.IntN(redis.SlotCount)
		}
		s = m.slots[slot].Load()
	}
	if s == nil {
		return t.seed()
	}
	if !readonly {
		return s.primary
	}
	switch t.opts.Load().ReadPolicy {
	case PreferMaster:
		if !s.primary.Unreachable() {
			return s.primary
		}
		if r := reachable(s.replicas); r != nil {
			return r
		}
		return s.primary
	case Replica:
		return reachable(s.replicas)
	case PreferReplica:
		if r := reachable(s.replicas); r != nil {
			return r
		}
		return s.primary
	case Any:
		if i := rand.IntN(len(s.replicas) + 1); i < len(s.replicas) && !s.replicas[i].Unreachable() {
			return s.replicas[i]
		}
		return s.primary
	}
	return s.primary
}

// Primary returns the primary serving slot (for a command that must run
// there whatever the read policy: a transaction, a blocking command).
func (t *Topology) Primary(slot int) *cluster.Host { return t.Pick(slot, false) }

// reachable returns one of hosts at random, skipping unreachable ones,
// or nil.
func reachable(hosts []*cluster.Host) *cluster.Host {
	n := len(hosts)
	if n == 0 {
		return nil
	}
	start := rand.IntN(n)
	for i := range n {
		if h := hosts[(start+i)%n]; !h.Unreachable() {
			return h
		}
	}
	return nil
}

// seed returns a seed node at random, or nil when there is none.
func (t *Topology) seed() *cluster.Host {
	seeds := t.opts.Load().Seeds
	if len(seeds) == 0 {
		return nil
	}
	return seeds[rand.IntN(len(seeds))]
}

// Moved records a MOVED reply: slot is served by the primary at addr.
// The map in force is corrected at once (the shard of that primary, or
// one of its own until the next refresh), and a refresh is asked for.
// It returns the primary's Host.
func (t *Topology) Moved(slot int, addr string) *cluster.Host {
	h := t.host(addr, false)
	if m := t.m.Load(); m != nil && slot >= 0 && slot < redis.SlotCount {
		s := m.byPrimary[h]
		if s == nil {
			s = &shard{primary: h}
		}
		m.slots[slot].Store(s)
	}
	t.Refresh()
	return h
}

// Asked returns the Host of the primary an ASK reply names (the map is
// left as it is: the slot is still the other node's).
func (t *Topology) Asked(addr string) *cluster.Host { return t.host(addr, false) }

// install makes shards the map in force. A slot the new map leaves
// uncovered (its primary failed and no replica took over yet) keeps the
// node of the map before: a request there fails as it would have, and
// the next refresh corrects it.
func (t *Topology) install(shards []redis.Shard) int {
	m := &slotMap{at: time.Now(), byPrimary: map[*cluster.Host]*shard{}}
	for _, rs := range shards {
		s := &shard{primary: t.host(rs.Primary, false)}
		m.byPrimary[s.primary] = s
		for _, r := range rs.Replicas {
			s.replicas = append(s.replicas, t.host(r, true))
		}
		for _, rg := range rs.Slots {
			for i := rg[0]; i <= rg[1]; i++ {
				m.slots[i].Store(s)
			}
		}
	}
	if old := t.m.Load(); old != nil {
		for i := range m.slots {
			if m.slots[i].Load() == nil {
				m.slots[i].Store(old.slots[i].Load())
			}
		}
	}
	t.m.Store(m)
	return m.covered()
}
