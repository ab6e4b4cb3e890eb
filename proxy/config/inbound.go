package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/lb"
	"github.com/metamesh/metamesh/proxy/router"
)

// Inbound capture (mesh mode, docs/mesh-mode.md): a connection redirected
// to the pod's own address on a port of a service it serves is served by
// that port's codec, and each request goes to the application at
// 127.0.0.1 on that port, through the same request path as any other
// (route, cluster, pool). Builder.Inbound makes, for every listener and
// endpoint port of its capture destinations, an inbound listener, a route
// table and a cluster, named in Istio's style:
//
//	listener and route table  inbound|PORT|<listener>
//	route                     inbound
//	cluster                   inbound|PORT||   (one endpoint: 127.0.0.1:PORT)

// InboundListenerName names the inbound listener of port for the service
// listener listener, and its route table.
func InboundListenerName(port uint16, listener string) string {
	return "inbound|" + strconv.Itoa(int(port)) + "|" + listener
}

// InboundClusterName names the cluster of the application on port.
func InboundClusterName(port uint16) string { return "inbound|" + strconv.Itoa(int(port)) + "||" }

// InboundRoute names the one route of an inbound route table.
const InboundRoute = "inbound"

// inboundKey is a capture table listener (a service listener or its copy
// with another default service) and the port dialed.
type inboundKey struct {
	l    *Listener
	port uint16
}

// Inbound returns the listener serving an inbound captured connection to
// dst, or nil: dst is not one of the addresses (the endpoints) of a
// service on a meta-protocol port, or the config was built without
// Builder.Inbound, and the connection is forwarded as bytes. Address
// ranges (a ServiceEntry's CIDR addresses) are not the pod's own address
// and are not looked at.
func (c *Config) Inbound(dst netip.AddrPort) *Listener {
	if c.inbound == nil {
		return nil
	}
	l := c.Capture.exact[netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())]
	if l == nil {
		return nil
	}
	return c.inbound[inboundKey{l, dst.Port()}]
}

// buildInbound adds to s the inbound listeners, route tables and clusters
// of every exact capture destination. A route table or cluster of the
// resources by one of the names is refused: the names are the proxy's.
func (b *Builder) buildInbound(s *Config) error {
	s.inbound = map[inboundKey]*Listener{}
	byName := map[string]*Listener{}
	clusters := map[string]bool{} // those made here
	for dst, l := range s.Capture.exact {
		port := dst.Port()
		k := inboundKey{l, port}
		if s.inbound[k] != nil {
			continue
		}
		name := InboundListenerName(port, l.Name)
		base := byName[name]
		if base == nil {
			var err error
			if base, err = b.inboundListener(s, l, name, port, clusters); err != nil {
				return err
			}
			byName[name] = base
		}
		in := base
		if l.DefaultService != base.DefaultService {
			v := *base
			v.DefaultService = l.DefaultService
			in = &v
		}
		s.inbound[k] = in
	}
	return nil
}

// inboundListener makes the inbound listener of l on port, with its route
// table and, unless another listener on port made it, its cluster.
func (b *Builder) inboundListener(s *Config, l *Listener, name string, port uint16, clusters map[string]bool) (*Listener, error) {
	if _, taken := s.Routes[name]; taken {
		return nil, fmt.Errorf("route_configuration %s: name: reserved for inbound capture", name)
	}
	cname := InboundClusterName(port)
	if !clusters[cname] {
		if _, taken := s.Clusters[cname]; taken {
			return nil, fmt.Errorf("cluster %s: name: reserved for inbound capture", cname)
		}
		cl, err := b.inboundCluster(cname, port)
		if err != nil {
			return nil, err
		}
		s.Clusters[cname], clusters[cname] = cl, true
	}
	// The inbound table has the service listener's virtual hosts, with
	// their domains (so their service, for labels and authorization), each
	// with the one inbound route: a request no virtual host of the
	// service listener serves gets no route here either.
	var vhosts []*router.VirtualHost
	if t := s.Routes[l.RouteConfig]; t != nil {
		seen := map[*router.VirtualHost]bool{}
		add := func(vh *router.VirtualHost) {
			if vh != nil && !seen[vh] {
				seen[vh] = true
				vhosts = append(vhosts, &router.VirtualHost{Name: vh.Name, Domains: vh.Domains, Routes: []*router.Route{{
					Name: InboundRoute, Clusters: []router.WeightedCluster{{Name: cname, Weight: 1}},
				}}})
			}
		}
		domains := make([]string, 0, len(t.VirtualHosts()))
		for d := range t.VirtualHosts() {
			domains = append(domains, d)
		}
		slices.Sort(domains)
		for _, d := range domains {
			add(t.VirtualHosts()[d])
		}
		add(t.Wildcard())
	}
	t, err := router.NewTable(name, vhosts)
	if err != nil {
		return nil, fmt.Errorf("listener %s: inbound: %w", l.Name, err)
	}
	s.Routes[name] = t
	in := *l
	in.Name, in.StatPrefix, in.RouteConfig = name, name, name
	return &in, nil
}

// inboundCluster is the application on 127.0.0.1:port.
func (b *Builder) inboundCluster(name string, port uint16) (*cluster.Cluster, error) {
	eps := []cluster.Endpoint{{Host: b.host(net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))), Weight: 1}}
	picker, err := lb.New(lb.RoundRobin, eps)
	if err != nil {
		return nil, err
	}
	return &cluster.Cluster{Name: name, Policy: lb.RoundRobin, Endpoints: eps, ConnectTimeout: time.Second, LB: picker, Load: b.load(name)}, nil
}
