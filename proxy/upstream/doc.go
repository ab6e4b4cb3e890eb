// Package upstream owns the connections from the proxy to upstream hosts.
//
// A Pool holds one host's connections for one codec. Every connection is
// the same type (conn.go); two strategies, chosen once from the codec's
// model when the pool is made (newPool in pool.go), give it its behaviour:
//
//   - a pairing matches each reply with the call it answers: by request
//     ID, rewritten per connection, for multiplexed codecs (pair_id.go);
//     by order for pipelined and exclusive ones (pair_fifo.go);
//   - an acquire strategy finds a call its connection: shared for
//     multiplexed codecs, by the client's affinity, else round robin
//     (acquire_shared.go), the client's affinity
//     slot for pipelined ones, so a client's commands stay in order
//     (acquire_affinity.go), a connection of the call's own until its
//     reply for exclusive ones (acquire_exclusive.go). A client that needs
//     a connection to itself for a while (a transaction, a blocking
//     command) takes a dedicated one, reset and reused afterwards
//     (acquire_dedicated.go, idle.go).
//
// A server that limits the calls in flight on a connection, or goes away
// (HTTP/2's MAX_CONCURRENT_STREAMS and GOAWAY, protocols.PeerLimiter), is
// respected by the shared strategy (limits.go).
//
// Every connection is dialed in one place (dial.go): calls waiting for the
// same connection share one dial, and after a failed dial requests fail at
// once for a moment instead of each waiting for a connect timeout.
package upstream
