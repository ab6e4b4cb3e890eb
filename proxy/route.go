package proxy

import (
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/router"
)

// route takes r through its steps. resolve finds what the others need;
// each other step returns nil to go on, or the
// local reply that ends r; forward hands r to an upstream (or answers it
// when no upstream takes it). Adding a policy means adding a step here.
func (d *downstream) route(r *request) {
	r.resolve()
	out := r.authorize()
	if out == nil {
		out = r.match()
	}
	if out == nil {
		out = r.admit()
	}
	if out == nil {
		out = r.pick()
	}
	if out != nil {
		r.answer(out)
		return
	}
	r.forward()
}

// resolve finds r's service, the listener's route table in force and
// the virtual host of r's service in it. It also makes r's sampling
// decisions, so every outcome from here on is observed.
func (r *request) resolve() {
	d, m := r.d, r.m
	r.snap = d.srv.snap.Load()
	// The listener's config in force (it may have been renamed or given
	// other routes since this connection was accepted).
	r.cfg = d.lis.cfg.Load()
	service, ok := m.Headers.Get(router.ServiceKey)
	if !ok && r.cfg.DefaultService != "" {
		service = r.cfg.DefaultService
		m.Headers.Set(router.ServiceKey, service)
	}
	r.service = service
	r.ob, r.traceSet = d.observe(r.cfg, m, service)
	r.table = r.snap.Routes[r.cfg.RouteConfig]
	r.label = serviceLabel(r.table, service)
	if r.table != nil {
		r.vh = r.table.Lookup(service)
	}
}

// match finds r's route: the first matching route of its virtual host;
// and applies the host's rate limits.
func (r *request) match() *local {
	m, service, vh := r.m, r.service, r.vh
	if r.table == nil {
		return fail(protocols.ReasonNoRoute, "metamesh: no route configuration %q for listener %s", r.cfg.RouteConfig, r.cfg.Name)
	}
	if vh == nil {
		return fail(protocols.ReasonNoRoute, "metamesh: no route for service %q", service)
	}
	if r.rt = vh.Match(&m.Headers); r.rt == nil {
		return fail(protocols.ReasonNoRoute, "metamesh: no route of %s matched the request to service %q", vh.Name, service)
	}
	r.routeName = r.rt.Name
	if vh.RateLimit != nil && !vh.RateLimit.Allow(&m.Headers) {
		r.d.srv.metrics.RateLimit.Limited.WithLabelValues(r.d.codecName, "local").Inc()
		return fail(protocols.ReasonRateLimited, "metamesh: service %q: rate limited (route %s)", service, r.rt.Name)
	}
	if g := vh.Global; g != nil && g.Applies(&m.Headers) {
		return r.global(g)
	}
	return nil
}
