package translate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// Scoping (docs/scoping.md): a proxy in namespace N sees a host when its
// ServiceEntry is exported to N and N's Sidecar, if any, lets N call it;
// of a host's MetaRouters and DestinationPolicies, the one exported to N
// applies there. Exports of one host's routers (or policies) never
// overlap: the newer of two that would both apply in a namespace is
// refused (Conflict), as two routers for one host always were.

// exportSet is where an object is exported: every namespace, or a list.
type exportSet struct {
	all bool
	ns  []string // sorted, without duplicates; "." made the owner's name
}

// exportsOf reads a validated exportTo of an object in namespace owner.
func exportsOf(e v1alpha1.ExportTo, owner string) exportSet {
	if len(e) == 0 || slices.Contains(e, v1alpha1.ExportAll) {
		return exportSet{all: true}
	}
	var out exportSet
	for _, ns := range e {
		if ns == v1alpha1.ExportOwn {
			ns = owner
		}
		out.ns = append(out.ns, ns)
	}
	slices.Sort(out.ns)
	out.ns = slices.Compact(out.ns)
	return out
}

// has reports whether a proxy in namespace ns sees the object; "" is a
// namespace no list names (the Default view).
func (e exportSet) has(ns string) bool {
	if e.all {
		return true
	}
	_, found := slices.BinarySearch(e.ns, ns)
	return found && ns != ""
}

// overlaps reports whether some namespace sees both.
func (e exportSet) overlaps(o exportSet) bool {
	if e.all || o.all {
		return true
	}
	for _, ns := range e.ns {
		if o.has(ns) {
			return true
		}
	}
	return false
}

func (e exportSet) String() string {
	if e.all {
		return "every namespace"
	}
	return "namespaces " + strings.Join(e.ns, ", ")
}

// gatewaySet is which proxies an object applies to (docs/gateways.md):
// the sidecars (mesh), those of named gateways, or any proxy.
type gatewaySet struct {
	any   bool // DestinationPolicies: sidecars and gateways alike
	mesh  bool
	names []string // "namespace/name", sorted, without duplicates
}

// gatewaysOf reads a validated gateways list of a MetaRouter in
// namespace owner: empty is the mesh, a bare name is in owner.
func gatewaysOf(g v1alpha1.Gateways, owner string) gatewaySet {
	if len(g) == 0 {
		return gatewaySet{mesh: true}
	}
	var out gatewaySet
	for _, gw := range g {
		switch {
		case gw == v1alpha1.GatewayMesh:
			out.mesh = true
		case strings.Contains(gw, "/"):
			out.names = append(out.names, gw)
		default:
			out.names = append(out.names, owner+"/"+gw)
		}
	}
	slices.Sort(out.names)
	out.names = slices.Compact(out.names)
	return out
}

// has reports whether the object applies to the proxies of gateway gw
// ("" the sidecars).
func (g gatewaySet) has(gw string) bool {
	switch {
	case g.any:
		return true
	case gw == "":
		return g.mesh
	}
	_, found := slices.BinarySearch(g.names, gw)
	return found
}

// overlaps reports whether some proxy gets both.
func (g gatewaySet) overlaps(o gatewaySet) bool {
	if g.any || o.any || g.mesh && o.mesh {
		return true
	}
	for _, n := range g.names {
		if o.has(n) {
			return true
		}
	}
	return false
}

func (g gatewaySet) String() string {
	var parts []string
	if g.any || g.mesh {
		parts = append(parts, "the sidecars")
	}
	if g.any {
		parts = append(parts, "every gateway")
	} else if len(g.names) > 0 {
		parts = append(parts, "gateways "+strings.Join(g.names, ", "))
	}
	return strings.Join(parts, " and ")
}

// attached is a MetaRouter or DestinationPolicy attached to a host.
type attached[T any] struct {
	obj      T
	key      string
	exports  exportSet
	gateways gatewaySet
}

// applies reports whether the entry applies to the proxies of gateway gw
// ("" sidecars) in namespace ns.
func (a *attached[T]) applies(ns, gw string) bool {
	return a.exports.has(ns) && a.gateways.has(gw)
}

// claim attaches obj to a host that holds list, unless an object already
// there applies to a proxy obj applies to (exported to one of its
// namespaces, for one of its gateways or the sidecars): then it returns
// that one, which keeps the host there.
func claim[T any](list *[]attached[T], a attached[T]) (holder *attached[T]) {
	for i := range *list {
		if (*list)[i].exports.overlaps(a.exports) && (*list)[i].gateways.overlaps(a.gateways) {
			return &(*list)[i]
		}
	}
	*list = append(*list, a)
	return nil
}

// pick returns the index of the entry of list that applies to the
// proxies of gateway gw ("" sidecars) in namespace ns, or -1.
func pick[T any](list []attached[T], ns, gw string) int {
	for i := range list {
		if list[i].applies(ns, gw) {
			return i
		}
	}
	return -1
}

// oldestFor returns the index of the oldest entry of list that applies
// to the proxies of gateway gw, whatever its exportTo, or -1.
func oldestFor[T any](list []attached[T], gw string) int {
	for i := range list {
		if list[i].gateways.has(gw) {
			return i
		}
	}
	return -1
}

// gateways lists the gateways some MetaRouter names, sorted.
func (t *translation) gateways() []string {
	var out []string
	for _, svc := range t.hostOrder {
		for _, r := range svc.routers {
			out = append(out, r.gateways.names...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// egress is one "namespace/host" of a Sidecar, its "." resolved.
type egress struct{ ns, host string }

func (e egress) matches(ns, host string) bool {
	if e.ns != v1alpha1.ExportAll && e.ns != ns {
		return false
	}
	switch {
	case e.host == "*":
		return true
	case strings.HasPrefix(e.host, "*."):
		return strings.HasSuffix(host, e.host[1:])
	}
	return e.host == host
}

// sidecar is the Sidecar in force in a namespace.
type sidecar struct {
	key, name string
	egress    []egress
}

func (s *sidecar) allows(ns, host string) bool {
	for _, e := range s.egress {
		if e.matches(ns, host) {
			return true
		}
	}
	return false
}

// registerSidecars takes the oldest Sidecar of each namespace; a newer
// one in the same namespace is refused.
func (t *translation) registerSidecars() {
	t.sidecars = map[string]*sidecar{}
	for _, sc := range t.in.Sidecars {
		key := keyOf(v1alpha1.KindSidecar, &sc.ObjectMeta)
		t.st(key)
		if held, dup := t.sidecars[sc.Namespace]; dup {
			t.conflict(key, "metadata.name", held.key, fmt.Sprintf("namespace %s already has Sidecar %s; a namespace has one", sc.Namespace, held.name))
			continue
		}
		s := &sidecar{key: key, name: sc.Name}
		for _, eg := range sc.Spec.Egress {
			for _, h := range eg.Hosts {
				ns, host, _ := strings.Cut(h, "/")
				if ns == v1alpha1.ExportOwn {
					ns = sc.Namespace
				}
				s.egress = append(s.egress, egress{ns: ns, host: host})
			}
		}
		t.sidecars[sc.Namespace] = s
	}
}

// namespaces lists the namespaces that may see something other than the
// Default view: those with a Sidecar, and those an exportTo names (or
// means by "."). Any other namespace sees what is exported to all.
func (t *translation) namespaces() []string {
	seen := map[string]bool{}
	for ns := range t.sidecars {
		seen[ns] = true
	}
	for _, svc := range t.hostOrder {
		for _, ns := range svc.exports.ns {
			seen[ns] = true
		}
		for _, r := range svc.routers {
			for _, ns := range r.exports.ns {
				seen[ns] = true
			}
		}
		for _, p := range svc.policies {
			for _, ns := range p.exports.ns {
				seen[ns] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	slices.Sort(out)
	return out
}
