// Package xds is the control plane's ADS server: it serves the xDS
// resources translated from the config (listeners, clusters, endpoints and
// route configurations) to every proxy over one aggregated gRPC stream,
// state of the world or delta, on go-control-plane's SnapshotCache.
// Each node gets the view of its namespace (UpdateViews; Update is one
// view for all); state-of-the-world responses share resources marshaled
// once per version instead of once per proxy.
//
// Run runs it (its publishing loop; its streams end when Run returns)
// and Update or UpdateViews hands it new resources. Updates are coalesced: the set
// is published once the updates stop for Options.Debounce (or
// Options.MaxDelay after the first of a burst), and only if it is
// consistent. A published snapshot is set for every connected node; a
// node that connects later gets the current one on its first request.
//
// Versions are content hashes, one per resource type: the same resources
// always have the same version (across restarts and replicas), and a type
// whose resources did not change keeps its version, so a MetaRouter edit
// pushes route configurations only.
//
// The server records, per proxy node, the version each type was last
// ACKed at and the last NACK with the proxy's error detail (Proxies, and
// /debug/proxies on Handler); NACKs are logged and counted. A NACKed
// version is not sent again to the proxy that refused it: the next push
// is the next change.
package xds
