package proxy

import (
	"context"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/router"
)

// global asks r's virtual host's rate-limit service about r (one call,
// waiting at most the limit's timeout): nil lets r go on; an OVER_LIMIT
// answer, or a failed call under deny_on_fail, is the codec's
// rate-limited reply. A failed call otherwise lets r through. On an event
// loop the call is made after the loop was handed to a new goroutine, so
// it holds up no other client (docs/proxy-config.md, "I/O mode").
func (r *request) global(g *router.GlobalRateLimit) *local {
	d := r.d
	d.rd.WillWait() // on an event loop, its other clients go on meanwhile
	limited, err := g.Check(context.Background(), &r.m.Headers)
	if err != nil {
		d.srv.metrics.RateLimit.ServiceErrors.WithLabelValues(g.Service.Cluster()).Inc()
		d.srv.log.Debug("rate-limit service call failed", zap.String("service", r.service), zap.Error(err))
		if !g.DenyOnFail {
			return nil
		}
		d.srv.metrics.RateLimit.Limited.WithLabelValues(d.codecName, "global").Inc()
		return fail(protocols.ReasonRateLimited, "metamesh: service %q: rate limited: %v (deny_on_fail)", r.service, err)
	}
	if !limited {
		return nil
	}
	d.srv.metrics.RateLimit.Limited.WithLabelValues(d.codecName, "global").Inc()
	return fail(protocols.ReasonRateLimited, "metamesh: service %q: rate limited by %s (route %s)", r.service, g.Service.Cluster(), r.rt.Name)
}
