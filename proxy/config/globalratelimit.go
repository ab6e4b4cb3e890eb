package config

import (
	"fmt"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/rls"
	"github.com/metamesh/metamesh/proxy/router"
)

// globalRateLimit reads a virtual host's GlobalRateLimit. Its service's
// client is the builder's one for the named cluster (kept from one
// config to the next: one pooled connection per rate-limit service),
// given that cluster's endpoints once the clusters are built
// (bindRateLimitServices).
func (b *Builder) globalRateLimit(g *xdsapi.GlobalRateLimit, path string) (*router.GlobalRateLimit, error) {
	if g.GetDomain() == "" {
		return nil, fmt.Errorf("%s.domain: empty", path)
	}
	if len(g.GetDescriptors()) == 0 {
		return nil, fmt.Errorf("%s.descriptors: empty (a rate-limit service needs at least one entry)", path)
	}
	out := &router.GlobalRateLimit{Domain: g.GetDomain(), DenyOnFail: g.GetDenyOnFail(), Timeout: router.DefaultRateLimitTimeout}
	if d := g.GetRequestTimeout(); d != nil {
		if out.Timeout = d.AsDuration(); out.Timeout <= 0 {
			return nil, fmt.Errorf("%s.request_timeout: %v: not positive", path, out.Timeout)
		}
	}
	for i, am := range g.GetMatch() {
		m, err := attributeMatcher(am)
		if err != nil {
			return nil, fmt.Errorf("%s.match[%d]: %w", path, i, err)
		}
		out.Match = append(out.Match, m)
	}
	for i, d := range g.GetDescriptors() {
		if d.GetProperty() == "" || d.GetDescriptorKey() == "" {
			return nil, fmt.Errorf("%s.descriptors[%d]: property and descriptor_key are both needed", path, i)
		}
		out.Descriptors = append(out.Descriptors, router.DescriptorEntry{Key: d.GetDescriptorKey(), Property: d.GetProperty()})
	}
	name := g.GetRateLimitService()
	if name == "" {
		return nil, fmt.Errorf("%s.rate_limit_service: empty", path)
	}
	c, err := b.rateLimitService(name)
	if err != nil {
		return nil, fmt.Errorf("%s.rate_limit_service: %w", path, err)
	}
	b.curServices[name] = c
	out.Service = c
	return out, nil
}

// rateLimitService returns the client of the rate-limit service served
// by cluster name: the one in force, or a new one.
func (b *Builder) rateLimitService(name string) (*rls.Client, error) {
	if c, ok := b.nextServices[name]; ok {
		return c, nil
	}
	c, ok := b.services[name]
	if !ok {
		var err error
		if c, err = rls.New(name); err != nil {
			return nil, err
		}
	}
	b.nextServices[name] = c
	return c, nil
}

// bindRateLimitServices gives each rate-limit service client of the
// build its cluster's endpoints; a service whose cluster is missing is
// refused.
func (b *Builder) bindRateLimitServices(s *Config) error {
	for name, c := range b.nextServices {
		cl, ok := s.Clusters[name]
		if !ok {
			return fmt.Errorf("rate_limit_service %q: no such cluster", name)
		}
		addrs := make([]string, len(cl.Endpoints))
		for i, ep := range cl.Endpoints {
			addrs[i] = ep.Host.Addr
		}
		c.SetAddrs(addrs)
	}
	return nil
}

// dropRateLimitServices closes the clients of from that are not in keep.
func dropRateLimitServices(from, keep map[string]*rls.Client) {
	for name, c := range from {
		if keep[name] != c {
			_ = c.Close()
		}
	}
}

// CloseRateLimitServices closes the client of every rate-limit service,
// at shutdown: no request may ask one afterwards.
func (b *Builder) CloseRateLimitServices() {
	dropRateLimitServices(b.nextServices, b.services)
	dropRateLimitServices(b.services, nil)
	b.services, b.nextServices = nil, nil
}
