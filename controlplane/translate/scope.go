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

// attached is a MetaRouter or DestinationPolicy attached to a host.
type attached[T any] struct {
	obj     T
	key     string
	exports exportSet
}

// claim attaches obj to a host that holds list, unless an object already
// there is exported to a namespace obj is exported to: then it returns
// that one, which keeps the host there.
func claim[T any](list *[]attached[T], a attached[T]) (holder *attached[T]) {
	for i := range *list {
		if (*list)[i].exports.overlaps(a.exports) {
			return &(*list)[i]
		}
	}
	*list = append(*list, a)
	return nil
}

// pick returns the index of the entry of list exported to ns, or -1.
func pick[T any](list []attached[T], ns string) int {
	for i := range list {
		if list[i].exports.has(ns) {
			return i
		}
	}
	return -1
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
