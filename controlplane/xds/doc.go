// Package xds is the control plane's ADS server: it serves the xDS
// resources translated from the config (listeners, clusters, endpoints and
// route configurations) to every proxy over one aggregated gRPC stream,
// state of the world or delta. It is metamesh's own server over
// go-control-plane's generated protos (docs/xds.md says why): each
// distinct view's resources are marshaled once into read-only tables
// shared by every stream, and a stream keeps only a version or a table
// reference per type.
//
// Each node gets the view of its namespace (UpdateViews; Update is one
// view for all). Run runs the server (its publishing loop; its streams end
// when Run returns) and Update or UpdateViews hands it new resources.
// Updates are coalesced: they are published once the updates stop for
// Options.Debounce (or Options.MaxDelay after the first of a burst), and
// only if every view is consistent. A stream sends its proxy what its view
// has that the proxy lacks, after each publish and on its first requests;
// responses made for one stream alone, sent and not yet answered, are
// bounded across streams (Options.InflightBytes).
//
// Versions are content hashes, one per resource type (and, for delta, one
// per resource): the same resources always have the same version (across
// restarts and replicas), and a type whose resources did not change keeps
// its version, so a MetaRouter edit pushes route configurations only.
//
// The server records, per proxy node, the version each type was last
// ACKed at and the last NACK with the proxy's error detail (Proxies, and
// /debug/proxies on Handler); NACKs are logged and counted. A NACKed
// version is not sent again to the proxy that refused it: the next push
// is the next change.
package xds
