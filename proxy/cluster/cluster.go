// Package cluster models upstream clusters: their hosts, which outlive
// config snapshots so live counters and connections survive a swap, and
// the immutable per-snapshot view a load balancer picks from.
package cluster

import (
	"crypto/tls"
	"sync/atomic"
	"time"
)

// Host is one upstream address of a cluster. The same Host value is reused
// by every snapshot that keeps the address, so its counters are live.
type Host struct {
	Addr   string
	active atomic.Int64
	health health
	reach  reach
}

// NewHost returns a host for addr.
func NewHost(addr string) *Host { return &Host{Addr: addr} }

// Active returns the requests in flight to h.
func (h *Host) Active() int64 { return h.active.Load() }

// Begin and End bracket one request to h.
func (h *Host) Begin() { h.active.Add(1) }

// End marks the end of a request begun with Begin.
func (h *Host) End() { h.active.Add(-1) }

// Endpoint is a host as one snapshot of a cluster sees it.
type Endpoint struct {
	Host   *Host
	Weight uint32
}

// Picker chooses a host for one request. key is the value of the route's
// hash attribute (hasKey false when the route has none or the request
// lacks it). Pick returns nil when there is no host to pick.
type Picker interface {
	Pick(key string, hasKey bool) *Host
}

// Cluster is the immutable view of one cluster in a config snapshot.
type Cluster struct {
	Name           string
	Policy         string
	Endpoints      []Endpoint
	ConnectTimeout time.Duration
	// MaxConnections is the upstream connections per host for shared
	// (multiplexed, pipelined) models, and the pool bound for exclusive.
	MaxConnections int
	LB             Picker
	// Limits bound the requests in flight and the retries; Load counts
	// them, shared with the other snapshots of the cluster.
	Limits Limits
	Load   *Load
	// Outlier ejects failing hosts (nil: never).
	Outlier *Outlier
	// TLS is how connections to its hosts speak TLS (nil: plaintext);
	// TLSKey names those settings, so connections with others are pooled
	// apart.
	TLS    *tls.Config
	TLSKey string
	// Mesh is mutual TLS to the hosts that run a sidecar (nil: none).
	Mesh *MeshTLS
	// Redis makes the cluster a Redis Cluster whose seed nodes are its
	// endpoints (nil: an ordinary cluster).
	Redis *RedisCluster
}

// RedisCluster is how the proxy treats a Redis Cluster
// (docs/redis-cluster.md).
type RedisCluster struct {
	// ReadPolicy is MASTER, PREFER_MASTER, REPLICA, PREFER_REPLICA or ANY.
	ReadPolicy string
	// RefreshInterval is how often the slot map is read again.
	RefreshInterval time.Duration
}

// MeshTLS is how a cluster speaks mutual TLS to the hosts that run a
// sidecar (docs/mesh-mode.md, "Mutual TLS between proxies").
type MeshTLS struct {
	TLS *tls.Config
	// Key names the settings, for pools (as Cluster.TLSKey).
	Key   string
	Hosts map[*Host]struct{}
	// Ready reports whether the proxy has a workload certificate; until
	// it has, its hosts are dialed in plaintext like the others.
	Ready func() bool
}

// MeshFor returns the mutual TLS settings for connections to h, or false
// when h gets the cluster's own (TLS, TLSKey).
func (c *Cluster) MeshFor(h *Host) (*tls.Config, string, bool) {
	if c.Mesh == nil {
		return nil, "", false
	}
	if _, ok := c.Mesh.Hosts[h]; !ok || !c.Mesh.Ready() {
		return nil, "", false
	}
	return c.Mesh.TLS, c.Mesh.Key, true
}
