// Package xdsclient is the proxy's ADS client: one aggregated gRPC stream (state
// of the world) to the control plane, subscribed to every listener,
// cluster, endpoint and route configuration (wildcard).
//
// Each response is applied as part of a complete set: the new resources of
// its type with the last accepted resources of the others. If Apply takes
// the set, the response is ACKed; if not, it is NACKed with Apply's error
// as error_detail and the proxy keeps the config it had. Until the first
// set is applied, responses are held until one of each type has arrived,
// so the first config the proxy applies is complete (and a --bootstrap
// config is replaced as a whole).
//
// When the stream breaks, the client reconnects with capped exponential
// backoff and jitter; meanwhile the proxy keeps serving its last config.
// On a new stream it sends the versions it has, and resyncs from whatever
// the control plane sends.
package xdsclient
