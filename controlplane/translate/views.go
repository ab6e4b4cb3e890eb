package translate

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// selection is what one view holds: per service (by idx), whether it is
// seen and which of its routers and policies is in force (-1: none).
type selection struct {
	seen           []bool
	router, policy []int
	// key encodes all of it: views with equal keys are equal.
	key []byte
}

func (t *translation) newSelection() *selection {
	n := len(t.hostOrder)
	return &selection{seen: make([]bool, n), router: make([]int, n), policy: make([]int, n), key: make([]byte, 0, 3*n)}
}

func (s *selection) set(i int, seen bool, router, policy int) {
	s.seen[i], s.router[i], s.policy[i] = seen, router, policy
	v := uint64(0)
	if seen {
		v = 1
	}
	s.key = binary.AppendUvarint(s.key, v)
	s.key = binary.AppendUvarint(s.key, uint64(router+1))
	s.key = binary.AppendUvarint(s.key, uint64(policy+1))
}

// selectAll is the whole mesh: every host, with its oldest router for
// the sidecars and its oldest policy.
func (t *translation) selectAll() *selection {
	s := t.newSelection()
	for i, svc := range t.hostOrder {
		s.set(i, true, oldestFor(svc.routers, ""), min(0, len(svc.policies)-1))
	}
	return s
}

// selectFor is the view of the sidecars (gw "") or the proxies of
// gateway gw in namespace ns ("" for Default: a namespace no Sidecar or
// exportTo names). A Sidecar scopes the sidecars of its namespace, not
// its gateways (docs/gateways.md).
func (t *translation) selectFor(ns, gw string) *selection {
	s := t.newSelection()
	var sc *sidecar
	if gw == "" {
		sc = t.sidecars[ns]
	}
	for i, svc := range t.hostOrder {
		seen := svc.exports.has(ns) && (sc == nil || sc.allows(svc.entry.Namespace, svc.host))
		s.set(i, seen, pick(svc.routers, ns, gw), pick(svc.policies, ns, gw))
	}
	return s
}

// views computes the Default view and those of the namespaces that differ
// from it, then the view of a gateway no MetaRouter names (that of the
// Default namespace without routers) and those of the gateways named that
// differ from it, building one Resources per distinct selection; full is
// the whole mesh's selection, already built as out.Resources.
func (t *translation) views(full *selection) *xdsapi.Views {
	built := map[string]*xdsapi.Resources{string(full.key): t.out.Resources}
	resources := func(s *selection) *xdsapi.Resources {
		if r, ok := built[string(s.key)]; ok {
			return r
		}
		r := t.build(s)
		built[string(s.key)] = r
		return r
	}
	def := t.selectFor("", "")
	v := &xdsapi.Views{Default: resources(def), Namespaces: map[string]*xdsapi.Resources{}}
	named := map[string]*selection{}
	for _, ns := range t.namespaces() {
		s := t.selectFor(ns, "")
		named[ns] = s
		if string(s.key) != string(def.key) {
			v.Namespaces[ns] = resources(s)
		}
	}
	t.noteUnseenExports(named)
	t.noteGatewaysUnexported()
	anyGW := t.selectFor("", xdsapi.AnyGateway)
	v.Gateways = map[string]*xdsapi.Resources{xdsapi.AnyGateway: resources(anyGW)}
	for _, gw := range t.gateways() {
		ns, _, _ := strings.Cut(gw, "/")
		if s := t.selectFor(ns, gw); string(s.key) != string(anyGW.key) {
			v.Gateways[gw] = resources(s)
		}
	}
	return v
}

// noteUnseenExports notes on each MetaRouter and DestinationPolicy
// exported to namespaces none of which sees its host: it applies nowhere
// (a misspelt namespace, or Sidecars that leave the host out). named holds
// the selection of every namespace an exportTo names.
func (t *translation) noteUnseenExports(named map[string]*selection) {
	for _, svc := range t.hostOrder {
		seen := func(e exportSet) bool {
			for _, ns := range e.ns {
				if named[ns].seen[svc.idx] {
					return true
				}
			}
			return e.all
		}
		note := func(key string, e exportSet) {
			if !seen(e) {
				t.note(key, fmt.Sprintf("spec.exportTo: none of the %s sees %s, so it applies nowhere", e, svc.host))
			}
		}
		for _, r := range svc.routers {
			note(r.key, r.exports)
		}
		for _, p := range svc.policies {
			note(p.key, p.exports)
		}
	}
}

// noteGatewaysUnexported notes on each MetaRouter for gateways only
// whose exportTo leaves out every one of its gateways' namespaces: it
// applies to no proxy (docs/gateways.md).
func (t *translation) noteGatewaysUnexported() {
	noted := map[string]bool{}
	for _, svc := range t.hostOrder {
		for _, r := range svc.routers {
			g := r.gateways
			if noted[r.key] || g.mesh || slices.ContainsFunc(g.names, func(gw string) bool {
				ns, _, _ := strings.Cut(gw, "/")
				return r.exports.has(ns)
			}) {
				continue
			}
			noted[r.key] = true
			t.note(r.key, fmt.Sprintf("spec.exportTo: none of the gateways %s is in %s, so it applies nowhere", strings.Join(g.names, ", "), r.exports))
		}
	}
}

// buildCache holds what several views share: the same messages, built
// once.
type buildCache struct {
	listeners    map[string]*listenerv3.Listener
	virtualHosts map[vhKey]*routev3.VirtualHost
	clusters     map[clusterKey]clusterSet
	// socketMatches are clusters' transport_socket_matches by the
	// identities they expect, joined by NUL (mtls.go).
	socketMatches map[string][]*clusterv3.Cluster_TransportSocketMatch
}

type vhKey struct {
	svc    *service
	port   int32
	router *v1alpha1.MetaRouter
	policy *v1alpha1.DestinationPolicy
}

type clusterKey struct {
	svc    *service
	policy *v1alpha1.DestinationPolicy
}

type clusterSet struct {
	clusters  []*clusterv3.Cluster
	endpoints []*endpointv3.ClusterLoadAssignment
}

// use puts in force, on every service, the router and policy s selects.
func (t *translation) use(s *selection) {
	for i, svc := range t.hostOrder {
		svc.router, svc.routKey, svc.policy, svc.polKey = nil, "", nil, ""
		if r := s.router[i]; r >= 0 {
			svc.router, svc.routKey = svc.routers[r].obj, svc.routers[r].key
		}
		if p := s.policy[i]; p >= 0 {
			svc.policy, svc.polKey = svc.policies[p].obj, svc.policies[p].key
		}
	}
}

// build makes the resources of a selection: per port with a service seen,
// a listener and a route configuration with one virtual host per service
// seen; per service seen, its clusters and endpoints.
func (t *translation) build(s *selection) *xdsapi.Resources {
	t.use(s)
	res := &xdsapi.Resources{}
	for _, p := range t.sortedPorts() {
		svcs := make([]*service, 0, len(p.services))
		for _, svc := range p.services {
			if s.seen[svc.idx] {
				svcs = append(svcs, svc)
			}
		}
		if len(svcs) == 0 {
			continue
		}
		name := ListenerName(p.protocol, p.number)
		res.Listeners = append(res.Listeners, t.cachedListener(p, svcs, name))
		rc := &routev3.RouteConfiguration{Name: name, VirtualHosts: make([]*routev3.VirtualHost, 0, len(svcs))}
		for _, svc := range svcs {
			rc.VirtualHosts = append(rc.VirtualHosts, t.cachedVirtualHost(p, svc))
		}
		res.Routes = append(res.Routes, rc)
	}
	for _, svc := range t.hostOrder {
		if !s.seen[svc.idx] {
			continue
		}
		k := clusterKey{svc, svc.policy}
		cs, ok := t.cache.clusters[k]
		if !ok {
			cs = t.clusters(svc)
			mapSet(&t.cache.clusters, k, cs)
		}
		res.Clusters = append(res.Clusters, cs.clusters...)
		res.Endpoints = append(res.Endpoints, cs.endpoints...)
	}
	t.addLimitClusters(s, res)
	return res
}

// cachedListener returns the listener of port p serving svcs, built once
// per set of services.
func (t *translation) cachedListener(p *port, svcs []*service, name string) *listenerv3.Listener {
	k := make([]byte, 0, 4+4*len(svcs))
	k = strconv.AppendInt(k, int64(p.number), 10)
	for _, svc := range svcs {
		k = binary.AppendUvarint(k, uint64(svc.idx))
	}
	if l, ok := t.cache.listeners[string(k)]; ok {
		return l
	}
	l := t.listener(p, svcs, name)
	mapSet(&t.cache.listeners, string(k), l)
	return l
}

// cachedVirtualHost returns svc's virtual host on p with the router and
// policy in force, built once per pair, unless its routes lead to another
// host whose policy may differ between views (its hash key is the
// route's): then it is built for each view.
func (t *translation) cachedVirtualHost(p *port, svc *service) *routev3.VirtualHost {
	if t.dependsOnOtherPolicies(svc) {
		return t.virtualHost(p, svc)
	}
	k := vhKey{svc, p.number, svc.router, svc.policy}
	if vh, ok := t.cache.virtualHosts[k]; ok {
		return vh
	}
	vh := t.virtualHost(p, svc)
	mapSet(&t.cache.virtualHosts, k, vh)
	return vh
}

func (t *translation) dependsOnOtherPolicies(svc *service) bool {
	if svc.router == nil {
		return false
	}
	other := func(h v1alpha1.Host) bool {
		o, ok := t.services[string(h)]
		// One policy exported to all is in force in every view.
		return ok && o != svc && (len(o.policies) > 1 || len(o.policies) == 1 && !o.policies[0].exports.all)
	}
	for _, r := range svc.router.Spec.Routes {
		for _, d := range r.Route {
			if other(d.Destination.Host) {
				return true
			}
		}
		if r.Mirror != nil && other(r.Mirror.Host) {
			return true
		}
	}
	return false
}

func mapSet[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = map[K]V{}
	}
	(*m)[k] = v
}
