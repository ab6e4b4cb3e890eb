package metrics

import "github.com/prometheus/client_golang/prometheus"

// RedisCluster holds the series of Redis Cluster upstreams
// (docs/redis-cluster.md), by cluster.
type RedisCluster struct {
	// Redirects counts MOVED and ASK replies the proxy followed, by kind
	// (moved, ask) and result (followed, exhausted: the request had been
	// redirected too often and the client got the reply).
	Redirects *prometheus.CounterVec
	// Refreshes counts slot map reads by result (ok, error).
	Refreshes *prometheus.CounterVec
	// SlotsCovered is how many of the 16384 slots the map in force
	// assigns to a node.
	SlotsCovered *prometheus.GaugeVec
	// NodeDuration is the latency of the commands a node answered, from
	// the proxy reading the command to the node's reply, by node (its
	// address: the nodes of one cluster are few) and command family
	// (read: commands Redis flags read-only; write: the rest).
	NodeDuration *prometheus.HistogramVec
}

func newRedisCluster() *RedisCluster {
	return &RedisCluster{
		Redirects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_redis_cluster_redirects_total",
			Help: "MOVED and ASK replies from Redis Cluster nodes, by cluster, kind (moved, ask) and result (followed, exhausted).",
		}, []string{"cluster", "kind", "result"}),
		Refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_redis_cluster_refreshes_total",
			Help: "Reads of a Redis Cluster's slot map, by cluster and result (ok, error).",
		}, []string{"cluster", "result"}),
		SlotsCovered: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "metamesh_redis_cluster_slots_covered",
			Help: "Slots of a Redis Cluster that the proxy's slot map assigns to a node (16384 when all are).",
		}, []string{"cluster"}),
		NodeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "metamesh_redis_cluster_node_request_duration_seconds",
			Help:    "Latency of the commands a Redis Cluster node answered, from the proxy reading the command to the node's reply, by cluster, node and family (read, write).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"cluster", "node", "family"}),
	}
}

func (r *RedisCluster) collectors() []prometheus.Collector {
	return []prometheus.Collector{r.Redirects, r.Refreshes, r.SlotsCovered, r.NodeDuration}
}
