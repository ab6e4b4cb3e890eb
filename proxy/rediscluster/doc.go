// Package rediscluster routes Redis commands over a Redis Cluster: the
// slot map learnt from the cluster's nodes (CLUSTER SHARDS, or CLUSTER
// SLOTS on servers older than 7), swapped whole on each refresh and
// corrected slot by slot by MOVED replies; the node of each command by
// its keys' slot and the cluster's read policy; and the nodes' Hosts,
// one per node and role, so replica connections are pooled apart (they
// are set up with READONLY). docs/redis-cluster.md describes the
// behaviour; the proxy package calls it from its request path.
package rediscluster
