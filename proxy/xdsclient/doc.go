// Package xdsclient is the proxy's ADS client: one aggregated gRPC stream to
// the control plane, delta (the default) or state of the world
// (Config.Protocol), subscribed to every listener, cluster, endpoint and
// route configuration (wildcard). Over delta a change brings only the
// resources it changed, merged into those received before; a response
// refused is kept, unapplied, as the control plane takes it as had, and
// the next of its type retries the whole.
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
// On a new stream it sends the versions it has (per type over state of
// the world, per resource over delta: initial_resource_versions), and
// resyncs from whatever the control plane sends: over delta, nothing if
// nothing changed.
package xdsclient
