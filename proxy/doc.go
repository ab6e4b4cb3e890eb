// Package proxy is the metamesh data plane: listeners, client connections
// and the request path from a decoded frame through the router and load
// balancer to an upstream pool and back. Config arrives as a set of xDS
// resources, compiled into an immutable snapshot and swapped atomically:
// a request uses the snapshot it started with, and no config change closes
// a connection or fails a request in flight.
package proxy
