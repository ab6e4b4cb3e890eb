package xds

import (
	"fmt"
	"strings"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// published are the views in force, and the signal of their replacement.
type published struct {
	def  *view            // nil before the first publish
	byNS map[string]*view // the namespaces whose view differs from Default
	// byGW are the views of gateway proxies by gateway (xdsapi.AnyGateway
	// for those without one of their own); empty: gateway proxies get
	// their namespace's view.
	byGW map[string]*view
	// replaced is closed when newer views are published: the streams
	// wait on it.
	replaced chan struct{}
	// byRes are the views by the resources they were built from: a view
	// handed again by the next update (the same *Resources: a namespace
	// the change did not touch) is not built again.
	byRes map[*xdsapi.Resources]*view
}

// newPublished builds v's views, of namespaces and of gateways. A view
// handed more than once (the same *Resources), or with the same content
// as another, is built once and shared; namespaces whose view is
// Default's are left out of byNS. prev
// are the views in force (nil: none), whose views and tables are reused.
func newPublished(v *xdsapi.Views, prev *published) (*published, error) {
	b := newBuilder(prev)
	byRes := map[*xdsapi.Resources]*view{}
	byKey := map[string]*view{}
	build := func(res *xdsapi.Resources) (*view, error) {
		if vw := byRes[res]; vw != nil {
			return vw, nil
		}
		var vw *view
		if prev != nil {
			vw = prev.byRes[res]
		}
		if vw == nil {
			var err error
			if vw, err = b.view(res); err != nil {
				return nil, err
			}
		}
		if same := byKey[vw.key()]; same != nil {
			vw = same
		} else {
			byKey[vw.key()] = vw
		}
		byRes[res] = vw
		return vw, nil
	}
	def, err := build(v.Default)
	if err != nil {
		return nil, err
	}
	p := &published{def: def, byNS: map[string]*view{}, byGW: map[string]*view{}, replaced: make(chan struct{}), byRes: byRes}
	for ns, res := range v.Namespaces {
		vw, err := build(res)
		if err != nil {
			return nil, fmt.Errorf("view of namespace %s: %w", ns, err)
		}
		if vw != def {
			p.byNS[ns] = vw
		}
	}
	for gw, res := range v.Gateways {
		vw, err := build(res)
		if err != nil {
			return nil, fmt.Errorf("view of gateway %s: %w", gw, err)
		}
		p.byGW[gw] = vw
	}
	return p, nil
}

// key is vw's versions in type order: equal keys, equal resources
// (versions are content hashes).
func (vw *view) key() string {
	var b strings.Builder
	for _, t := range vw.tables {
		b.WriteString(t.version)
		b.WriteByte('/')
	}
	return b.String()
}

// same reports whether p and q hold the same resources for every
// namespace.
func (p *published) same(q *published) bool {
	if p.def == nil || q.def == nil {
		return p.def == q.def
	}
	if p.def.key() != q.def.key() {
		return false
	}
	return sameViews(p.byNS, q.byNS) && sameViews(p.byGW, q.byGW)
}

func sameViews(a, b map[string]*view) bool {
	if len(a) != len(b) {
		return false
	}
	for k, vw := range a {
		other := b[k]
		if other == nil || vw.key() != other.key() {
			return false
		}
	}
	return true
}

// forNode is the view of a node's namespace (nil before the first
// publish).
func (p *published) forNode(node string) *view {
	if ns, ok := namespaceOf(node); ok {
		if vw := p.byNS[ns]; vw != nil {
			return vw
		}
	}
	return p.def
}

// forProxy is the view of a node serving gateway gw ("" a sidecar): its
// gateway's, else that of the gateways without one of their own, else
// (no gateway views) its namespace's.
func (p *published) forProxy(node, gw string) *view {
	if gw != "" && len(p.byGW) > 0 {
		if vw := p.byGW[gw]; vw != nil {
			return vw
		}
		if vw := p.byGW[xdsapi.AnyGateway]; vw != nil {
			return vw
		}
	}
	return p.forNode(node)
}

// distinct are the distinct views.
func (p *published) distinct() []*view {
	if p.def == nil {
		return nil
	}
	out := []*view{p.def}
	seen := map[*view]bool{p.def: true}
	for _, m := range []map[string]*view{p.byNS, p.byGW} {
		for _, vw := range m {
			if !seen[vw] {
				seen[vw] = true
				out = append(out, vw)
			}
		}
	}
	return out
}

// namespaceOf is the namespace of a node ID `<pod>.<namespace>`: the part
// after the last dot. ok is false when the ID has no dot.
func namespaceOf(node string) (ns string, ok bool) {
	i := strings.LastIndexByte(node, '.')
	if i < 0 {
		return "", false
	}
	return node[i+1:], true
}
