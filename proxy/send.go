package proxy

import (
	"errors"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// A client's requests go to upstream pools: the pool of a host with its
// cluster's connection settings and the codec the client's session chose,
// and what happens when no connection to a host can be made.

// send queues c to its host's pool for cl.
func (d *downstream) send(c *upstream.Call, cl *cluster.Cluster, b *wire.Batch) error {
	host := c.Host // c is the connection's once sent
	err := d.pool(cl, host).Send(c, b)
	if errors.Is(err, upstream.ErrPoolClosed) {
		// A config swap drained the pool between our snapshot and the
		// send; nothing went out, so ask again (a config change must not
		// fail a request).
		err = d.pool(cl, host).Send(c, b)
	}
	if err == nil {
		host.Connected()
	}
	return err
}

// pool returns the upstream pool of host, with cl's connection settings.
func (d *downstream) pool(cl *cluster.Cluster, host *cluster.Host) *upstream.Pool {
	opts := upstream.Options{ConnectTimeout: cl.ConnectTimeout, MaxConnections: cl.MaxConnections, TLS: cl.TLS, TLSKey: cl.TLSKey}
	if cfg, key, ok := cl.MeshFor(host); ok {
		opts.TLS, opts.TLSKey = cfg, key
	}
	codec := d.upstreamCodec()
	if cl.Redis != nil {
		codec = d.codecFor(cl, host)
	}
	return d.srv.pools.Pool(host.Addr, codec, opts)
}

// codecRef holds the codec of a client's upstream connections.
type codecRef struct{ c protocols.Codec }

// noteUpstream publishes the codec the session wants its requests sent
// with, when it changed (Redis: after SELECT). Read loop only.
func (d *downstream) noteUpstream() {
	if uc := d.variant.UpstreamCodec(); uc != d.lastUp {
		d.lastUp = uc
		d.upCodec.Store(codecRef{uc})
	}
}

// upstreamCodec is the codec of the client's upstream connections: the
// listener's, or the variant its session chose.
func (d *downstream) upstreamCodec() protocols.Codec {
	if r, ok := d.upCodec.Load().(codecRef); ok {
		return r.c
	}
	return d.codec
}

// connectFailed records that no connection to host could be made: it
// counts against the host for outlier detection and marks it unreachable
// (every picker skips it until a reconnect in the background succeeds).
// It returns another host to send to instead, or nil when there is none
// reachable. Nothing reached any upstream, so sending elsewhere is safe
// whatever the route's retry policy says (gRPC's transparent retry).
func (d *downstream) connectFailed(cl *cluster.Cluster, host *cluster.Host, key string, hasKey bool) *cluster.Host {
	d.report(cl, host, false)
	if host.ConnectFailed(d.pool(cl, host).Reconnect) {
		d.srv.metrics.Unreachable.WithLabelValues(cl.Name).Inc()
		d.srv.log.Warn("upstream host unreachable: skipped until a reconnect succeeds",
			zap.String("cluster", cl.Name), zap.String("host", host.Addr))
	}
	if t := d.topology(cl); t != nil {
		// Only the node of the slot serves it: the map may have changed.
		t.Refresh()
		return nil
	}
	next := cl.PickOther(key, hasKey, host)
	if next == nil || next == host || next.Unreachable() {
		return nil
	}
	return next
}

// sendFailure is the local reply reason for a Send error.
func sendFailure(err error) protocols.Reason {
	if errors.Is(err, upstream.ErrOverloaded) {
		return protocols.ReasonOverloaded
	}
	return protocols.ReasonNoHealthyUpstream
}
