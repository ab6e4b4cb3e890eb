package proxy

import (
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/router"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/wire"
)

// mirror sends copies of m to rt's mirror clusters, fire and forget: a
// copy that can't be sent is counted and dropped, and its reply is
// discarded by mirrorSink. Nothing here can delay or fail m itself.
func (d *downstream) mirror(m *protocols.Message, rt *router.Route, snap *config.Config, service string) {
	if rt.MirrorExcludesReadonly {
		if ro, _ := m.Headers.Get("readonly"); ro == "true" {
			return
		}
	}
	for i := range rt.Mirrors {
		mr := &rt.Mirrors[i]
		if !mr.Sample() {
			continue
		}
		count := func(result string) {
			d.srv.metrics.Mirrors.WithLabelValues(d.codecName, service, rt.Name, mr.Cluster, result).Inc()
		}
		cl := snap.Clusters[mr.Cluster]
		if cl == nil {
			count("no_cluster")
			continue
		}
		host := cl.Pick("", false)
		if host == nil {
			count("no_host")
			continue
		}
		c := upstream.NewCall(m)
		c.Set, c.Host, c.Receiver, c.ClusterName, c.Affinity = rt.RequestSet, host, mirrorSink{}, mr.Cluster, d.affinity
		if err := d.send(c, cl, &d.batch); err != nil {
			c.Release()
			count("failed")
			continue
		}
		count("sent")
	}
}

// mirrorSink takes the outcome of mirrored copies: it drops it.
type mirrorSink struct{}

func (mirrorSink) Respond(c *upstream.Call, _ *protocols.Message, _ *wire.Batch) { c.Release() }

func (mirrorSink) Fail(c *upstream.Call, _ protocols.Reason, _ error, _ *wire.Batch) { c.Release() }
