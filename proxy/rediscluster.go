package proxy

import (
	"fmt"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/rediscluster"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// The request path's hooks for Redis Cluster upstreams
// (docs/redis-cluster.md): the node of a command by its keys' slot, the
// READONLY pools of replicas, and MOVED and ASK followed.

// maxRedirects bounds the MOVED and ASK replies one command follows;
// the client gets the next one.
const maxRedirects = 5

// topology returns the Redis Cluster behind cl, or nil when cl is an
// ordinary cluster or the listener's codec is not Redis's.
func (d *downstream) topology(cl *cluster.Cluster) *rediscluster.Topology {
	if cl == nil || cl.Redis == nil {
		return nil
	}
	rc, ok := d.codec.(*redis.Codec)
	if !ok {
		return nil
	}
	return d.srv.redis.Get(cl, rc)
}

// pickRedis chooses r's node in a Redis Cluster: the primary of its keys'
// slot, or for a read-only command the node the read policy says. A
// command whose keys span slots gets Redis's CROSSSLOT error; one that
// needs a connection of its own (a transaction, a blocking command) runs
// on the primary.
func (r *request) pickRedis(t *rediscluster.Topology) *local {
	// The first commands wait for the first map (bounded: a dial and a
	// read, then they go through a seed).
	t.WaitFirstRead(r.cl.ConnectTimeout + rediscluster.QueryTimeout)
	slot, one := redis.KeySlots(r.m)
	if !one {
		return &local{raw: redis.CrossSlotReply, text: "CROSSSLOT"}
	}
	ro, _ := r.m.Headers.Get(redis.AttrReadonly)
	readonly := ro == "true" && r.pin == protocols.Forward
	if r.host = t.Pick(slot, readonly); r.host == nil {
		if !r.oneway() {
			r.cl.Load.End()
		}
		return fail(protocols.ReasonNoHealthyUpstream, "metamesh: route %s: no node of Redis Cluster %s serves slot %d under read policy %s",
			r.rt.Name, r.cname, slot, r.cl.Redis.ReadPolicy)
	}
	return nil
}

// codecFor returns the codec of connections to host: a Redis Cluster
// replica's are set up with READONLY.
func (d *downstream) codecFor(cl *cluster.Cluster, host *cluster.Host) protocols.Codec {
	if t := d.topology(cl); t != nil && t.IsReplica(host) {
		return d.codec.(*redis.Codec).Variant(true, 0)
	}
	return d.codec
}

// redirect follows a MOVED or ASK reply to c, a command to a Redis
// Cluster, and reports whether it did (the reply then goes nowhere).
// hops is how many times the command was redirected already. A command
// on a client's own connection (a transaction) is not redirected: the
// client gets the reply.
func (d *downstream) redirect(c *upstream.Call, resp *protocols.Message, b *wire.Batch, hops int) bool {
	if resp.Kind != protocols.KindError || c.Dedicated {
		return false
	}
	t := d.topology(c.Cluster)
	if t == nil {
		return false
	}
	rd, ok := redis.ParseRedirect(resp.Raw, c.Host.Addr)
	if !ok {
		return false
	}
	kind := "moved"
	if rd.Ask {
		kind = "ask"
	}
	if hops >= maxRedirects {
		d.srv.metrics.RedisCluster.Redirects.WithLabelValues(c.Cluster.Name, kind, "exhausted").Inc()
		return false
	}
	d.srv.metrics.RedisCluster.Redirects.WithLabelValues(c.Cluster.Name, kind, "followed").Inc()
	var host *cluster.Host
	if rd.Ask {
		host = t.Asked(rd.Addr)
	} else {
		host = t.Moved(rd.Slot, rd.Addr)
	}
	nc := upstream.NewCall(&c.Req)
	nc.Set, nc.ResponseSet, nc.Host, nc.Cluster, nc.Log, nc.Span = c.Set, c.ResponseSet, host, c.Cluster, c.Log, c.Span
	nc.Service, nc.Route, nc.ClusterName, nc.Start, nc.Seq, nc.Affinity = c.Service, c.Route, c.ClusterName, c.Start, c.Seq, c.Affinity
	nc.Receiver = &hop{d: d, hops: hops + 1}
	c.Host.End()
	c.Release()
	host.Begin()
	var err error
	if rd.Ask {
		err = d.sendAsking(nc, b)
	} else {
		err = d.send(nc, nc.Cluster, b)
	}
	if err != nil {
		t.Refresh()
		nc.Receiver.Fail(nc, sendFailure(err), fmt.Errorf("following %s to %s: %w", kind, rd.Addr, err), b)
	}
	return true
}

// sendAsking sends ASKING and then c on a connection of their own, so
// nothing comes between them (ASKING holds for the next command only).
func (d *downstream) sendAsking(c *upstream.Call, b *wire.Batch) error {
	conn, err := d.pool(c.Cluster, c.Host).Dedicated()
	if err != nil {
		return err
	}
	defer conn.Release()
	var m protocols.Message
	if _, err := d.codec.Decode(redis.Asking, &m); err != nil {
		return err
	}
	ac := upstream.NewCall(&m)
	ac.Host, ac.Receiver = c.Host, mirrorSink{}
	if err := conn.Send(ac, b); err != nil {
		ac.Release()
		return err
	}
	return conn.Send(c, b)
}

// hop receives the outcome of a redirected command.
type hop struct {
	d    *downstream
	hops int
}

func (h *hop) Respond(c *upstream.Call, resp *protocols.Message, b *wire.Batch) {
	if !h.d.redirect(c, resp, b, h.hops) {
		h.d.respond(c, resp, b)
	}
}

func (h *hop) Fail(c *upstream.Call, reason protocols.Reason, err error, b *wire.Batch) {
	h.d.Fail(c, reason, err, b)
}

var _ upstream.Receiver = (*hop)(nil)
