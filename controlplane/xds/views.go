package xds

import (
	"fmt"
	"strings"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// published are the snapshots in force: one per distinct view.
type published struct {
	def  *cachev3.Snapshot
	byNS map[string]*cachev3.Snapshot // the namespaces whose view differs from Default
}

// newPublished builds the snapshot of each of v's views. A view handed
// more than once (the same *Resources), or with the same content as
// another, is marshaled once and shares its snapshot; namespaces whose
// view is Default's are left out of byNS. It returns every type's
// marshaled resources, each version once.
func newPublished(v *xdsapi.Views) (*published, []marshaledResources, error) {
	var all []marshaledResources
	byRes := map[*xdsapi.Resources]*cachev3.Snapshot{}
	byKey := map[string]*cachev3.Snapshot{}
	build := func(res *xdsapi.Resources) (*cachev3.Snapshot, error) {
		if snap := byRes[res]; snap != nil {
			return snap, nil
		}
		snap, marshaled, err := newSnapshot(res)
		if err != nil {
			return nil, err
		}
		key := snapshotKey(snap)
		if same := byKey[key]; same != nil {
			snap = same
		} else {
			byKey[key] = snap
			all = append(all, marshaled...)
		}
		byRes[res] = snap
		return snap, nil
	}
	def, err := build(v.Default)
	if err != nil {
		return nil, nil, err
	}
	p := &published{def: def, byNS: map[string]*cachev3.Snapshot{}}
	for ns, res := range v.Namespaces {
		snap, err := build(res)
		if err != nil {
			return nil, nil, fmt.Errorf("view of namespace %s: %w", ns, err)
		}
		if snap != def {
			p.byNS[ns] = snap
		}
	}
	return p, dedupe(all), nil
}

// dedupe drops the repeated (type, version) pairs of ms: views that
// differ in one type share the others.
func dedupe(ms []marshaledResources) []marshaledResources {
	seen := map[[2]string]bool{}
	out := ms[:0]
	for _, m := range ms {
		k := [2]string{m.typeURL, m.version}
		if !seen[k] {
			seen[k] = true
			out = append(out, m)
		}
	}
	return out
}

// snapshotKey is snap's versions in type order: equal keys, equal
// resources (versions are content hashes).
func snapshotKey(snap *cachev3.Snapshot) string {
	var b strings.Builder
	for i := range snap.Resources {
		b.WriteString(snap.Resources[i].Version)
		b.WriteByte('/')
	}
	return b.String()
}

// same reports whether p and q hold the same resources for every
// namespace.
func (p *published) same(q *published) bool {
	if snapshotKey(p.def) != snapshotKey(q.def) || len(p.byNS) != len(q.byNS) {
		return false
	}
	for ns, snap := range p.byNS {
		other := q.byNS[ns]
		if other == nil || snapshotKey(snap) != snapshotKey(other) {
			return false
		}
	}
	return true
}

// forNode is the snapshot of a node's namespace.
func (p *published) forNode(node string) *cachev3.Snapshot {
	if ns, ok := namespaceOf(node); ok {
		if snap := p.byNS[ns]; snap != nil {
			return snap
		}
	}
	return p.def
}

// views is the number of distinct snapshots, for logs.
func (p *published) views() int {
	distinct := map[*cachev3.Snapshot]bool{p.def: true}
	for _, snap := range p.byNS {
		distinct[snap] = true
	}
	return len(distinct)
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
