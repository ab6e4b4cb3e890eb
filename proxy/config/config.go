// Package config compiles a set of xDS resources (xdsapi.Resources: Envoy v3
// listeners, clusters, endpoints and route configurations, plus metamesh's
// MetaProtocolProxy filter config) into the immutable runtime Config the
// proxy swaps in atomically. Anything it can't honour is refused with the
// resource and field named. (The control plane's "snapshots" are
// go-control-plane's versioned resource sets; this package has none.)
package config

import (
	"fmt"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/accesslog"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/mtls"
	"github.com/metamesh/metamesh/proxy/rls"
	"github.com/metamesh/metamesh/proxy/router"
)

// Config is one immutable, validated proxy config. A request loads the
// config in force once and uses it to its end.
type Config struct {
	Listeners map[string]*Listener
	Routes    map[string]*router.Table
	Clusters  map[string]*cluster.Cluster
	// Capture finds the listener of a captured connection (mesh mode).
	Capture *CaptureTable
	// inbound are the listeners of inbound captured connections, when
	// built with Builder.Inbound (inbound.go).
	inbound map[inboundKey]*Listener
	// xdsapi.Resources is the input, kept for config dumps.
	Resources *xdsapi.Resources
}

// Builder builds Configs. It remembers the hosts, codecs, cluster loads
// and rate-limit buckets of the last snapshot it built so the next one
// reuses them, and what it built from each cluster (with its endpoints)
// and route configuration message, reused as it is when the next set
// holds the same message (reuse.go). Not safe for concurrent
// use: the proxy serializes config updates.
type Builder struct {
	hosts, nextHosts   map[string]*cluster.Host
	codecs, nextCodecs map[string]protocols.Codec
	loads, nextLoads   map[string]*cluster.Load
	// buckets are the rate-limit token buckets by route configuration,
	// virtual host and condition.
	buckets, nextBuckets map[string]*router.Bucket
	// clusters, routes and assignments are what the snapshot in force was
	// built from, for reuse (reuse.go); curBuckets collects the buckets of
	// the route configuration being built.
	clusters, nextClusters       map[string]builtCluster
	routes, nextRoutes           map[string]builtRoutes
	assignments, nextAssignments map[*endpointv3.ClusterLoadAssignment]struct{}
	curBuckets                   map[string]*router.Bucket
	// services are the clients of rate-limit services by cluster name
	// (globalratelimit.go); curServices collects those of the route
	// configuration being built.
	services, nextServices, curServices map[string]*rls.Client
	// Inbound builds the listeners, route tables and clusters that serve
	// inbound captured connections through their codec (inbound.go).
	Inbound bool
	// AccessLogs holds the access log sinks listeners write to; set it to
	// count dropped lines (a default that counts nothing is made on first
	// use).
	AccessLogs *accesslog.Sinks
	// Mesh is the proxy's mutual TLS between proxies, whose client
	// configs clusters use (NewBuilder makes one without an identity).
	Mesh *mtls.Mesh
}

// NewBuilder returns a builder with nothing to reuse yet.
func NewBuilder() *Builder {
	return &Builder{hosts: map[string]*cluster.Host{}, codecs: map[string]protocols.Codec{}, loads: map[string]*cluster.Load{}, buckets: map[string]*router.Bucket{},
		Mesh: mtls.New(nil, nil)}
}

// Build validates res and compiles it. On error nothing changes: the
// caller keeps its current snapshot, and the error names the resource and
// field at fault. The hosts and codecs of a built snapshot are reused by
// later builds only once the caller has put it in force and called Commit.
func (b *Builder) Build(res *xdsapi.Resources) (*Config, error) {
	b.nextHosts = map[string]*cluster.Host{}
	b.nextCodecs = map[string]protocols.Codec{}
	b.nextLoads = map[string]*cluster.Load{}
	b.nextBuckets = map[string]*router.Bucket{}
	dropRateLimitServices(b.nextServices, b.services) // a failed build's
	b.nextServices = map[string]*rls.Client{}
	b.nextClusters = map[string]builtCluster{}
	b.nextRoutes = map[string]builtRoutes{}
	b.nextAssignments = make(map[*endpointv3.ClusterLoadAssignment]struct{}, len(res.Endpoints))
	s := &Config{
		Listeners: map[string]*Listener{},
		Routes:    map[string]*router.Table{},
		Clusters:  map[string]*cluster.Cluster{},
		Resources: res,
	}
	if err := validateAll(res, b.known); err != nil {
		return nil, err
	}
	for _, rc := range res.Routes {
		if _, dup := s.Routes[rc.GetName()]; dup {
			return nil, fmt.Errorf("route_configuration %s: name: duplicate", rc.GetName())
		}
		t := b.reusedRoutes(rc)
		if t == nil {
			b.curBuckets = map[string]*router.Bucket{}
			b.curServices = map[string]*rls.Client{}
			var err error
			if t, err = b.buildRoutes(rc); err != nil {
				return nil, err
			}
			b.nextRoutes[rc.GetName()] = builtRoutes{src: rc, out: t, buckets: b.curBuckets, services: b.curServices}
		}
		s.Routes[rc.GetName()] = t
	}
	cla := make(map[string]*endpointv3.ClusterLoadAssignment, len(res.Endpoints))
	for _, e := range res.Endpoints {
		cla[e.GetClusterName()] = e
		b.nextAssignments[e] = struct{}{}
	}
	for _, c := range res.Clusters {
		if _, dup := s.Clusters[c.GetName()]; dup {
			return nil, fmt.Errorf("cluster %s: name: duplicate", c.GetName())
		}
		assignment, err := assignmentOf(c, cla)
		if err != nil {
			return nil, err
		}
		built := b.reusedCluster(c, assignment)
		if built == nil {
			if built, err = b.buildCluster(c, assignment); err != nil {
				return nil, err
			}
			b.nextClusters[c.GetName()] = builtCluster{src: c, cla: assignment, out: built}
		}
		s.Clusters[c.GetName()] = built
	}
	addrs := map[string]string{}
	captures := make(map[string][]captureEntryPort, len(res.Listeners))
	for _, l := range res.Listeners {
		built, dests, err := b.buildListener(l)
		if err != nil {
			return nil, err
		}
		if _, dup := s.Listeners[built.Name]; dup {
			return nil, fmt.Errorf("listener %s: name: duplicate", built.Name)
		}
		if other, dup := addrs[built.Address]; dup {
			return nil, fmt.Errorf("listener %s: address: %s is already used by listener %s", built.Name, built.Address, other)
		}
		addrs[built.Address] = built.Name
		s.Listeners[built.Name] = built
		captures[built.Name] = dests
	}
	s.Capture = buildCaptureTable(captures)
	if b.Inbound {
		if err := b.buildInbound(s); err != nil {
			return nil, err
		}
	}
	if err := b.bindRateLimitServices(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Commit makes the last successful Build the one later builds reuse.
func (b *Builder) Commit() {
	if b.nextHosts != nil {
		for addr, h := range b.hosts {
			if _, kept := b.nextHosts[addr]; !kept {
				h.Retire() // its reconnect loop, if any, has nothing to serve
			}
		}
		dropRateLimitServices(b.services, b.nextServices)
		b.services, b.nextServices = b.nextServices, nil
		b.hosts, b.codecs, b.loads, b.buckets = b.nextHosts, b.nextCodecs, b.nextLoads, b.nextBuckets
		b.clusters, b.routes, b.assignments = b.nextClusters, b.nextRoutes, b.nextAssignments
		b.nextHosts, b.nextCodecs, b.nextLoads, b.nextBuckets = nil, nil, nil, nil
		b.nextClusters, b.nextRoutes, b.nextAssignments = nil, nil, nil
	}
}

// validateAll runs each resource's generated Validate (protoc-gen-validate
// rules) first, so structural errors read the same as Envoy's; resources
// known (validated in the snapshot in force) are skipped.
func validateAll(res *xdsapi.Resources, known func(any) bool) error {
	type validator interface{ Validate() error }
	check := func(kind, name string, m proto.Message) error {
		if known(m) {
			return nil
		}
		if v, ok := m.(validator); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("%s %s: %w", kind, name, err)
			}
		}
		return nil
	}
	for _, l := range res.Listeners {
		if err := check("listener", l.GetName(), l); err != nil {
			return err
		}
	}
	for _, c := range res.Clusters {
		if err := check("cluster", c.GetName(), c); err != nil {
			return err
		}
	}
	for _, e := range res.Endpoints {
		if err := check("cluster_load_assignment", e.GetClusterName(), e); err != nil {
			return err
		}
	}
	for _, r := range res.Routes {
		if err := check("route_configuration", r.GetName(), r); err != nil {
			return err
		}
	}
	return nil
}
