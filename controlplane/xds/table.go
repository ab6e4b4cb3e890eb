package xds

import (
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// typeOrder are the served types in the order ADS sends them: clusters
// and their endpoints before the listeners and routes that use them.
var typeOrder = [4]string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType}

// typeIndex is the position of a served type URL in typeOrder.
func typeIndex(url string) (int, bool) {
	for i, u := range typeOrder {
		if u == url {
			return i, true
		}
	}
	return 0, false
}

// table is one type's resources of one view, marshaled once and read,
// never changed, by every stream that sends them: a stream keeps no copy
// of what it sent, only a reference to the table (docs/xds.md).
type table struct {
	typeURL string
	version string // the hash of all of them (docs/xds.md#versions)
	names   []string
	index   map[string]int // names' positions
	// all are the resources in name order, as state of the world sends
	// them; delta the same with their names and versions, as delta does.
	all   []*anypb.Any
	delta []*discoveryv3.Resource
	// sotw and whole are the responses of the whole table, state of the
	// world and delta, marshaled once when first sent (codec.go).
	sotw  *prepared
	whole *tableDiff

	mu    sync.Mutex
	diffs map[string]*tableDiff // from an older table, by its version

	digestOnce sync.Once
	digestSum  uint64 // of its names and versions (resume.go)
}

// tableDiff is what a proxy holding one table lacks of a newer one.
type tableDiff struct {
	changed []*discoveryv3.Resource // added or different, shared with the table
	removed []string
	// bytes are changed's resources' bytes: a stream sending a diff made
	// for it alone takes admission for them (shared diffs take none).
	bytes int64
	// resp is the delta response sending it, marshaled once for every
	// stream it goes to.
	resp *prepared
}

// newDiff is the diff sending changed and removed of t.
func (t *table) newDiff(changed []*discoveryv3.Resource, removed []string) *tableDiff {
	d := &tableDiff{changed: changed, removed: removed, resp: prepare(&discoveryv3.DeltaDiscoveryResponse{
		SystemVersionInfo: t.version, Resources: changed, RemovedResources: removed, TypeUrl: t.typeURL,
	})}
	for _, r := range changed {
		d.bytes += int64(len(r.GetResource().GetValue()))
	}
	return d
}

// maxDiffs bounds the diffs a table remembers: streams move to the newest
// table on every push, so only a few older versions are ever asked for.
const maxDiffs = 8

func newTable(m marshaledResources) *table {
	t := &table{
		typeURL: m.typeURL,
		version: m.version,
		names:   m.names,
		index:   make(map[string]int, len(m.names)),
		all:     make([]*anypb.Any, len(m.values)),
		delta:   make([]*discoveryv3.Resource, len(m.values)),
	}
	for i, v := range m.values {
		t.index[m.names[i]] = i
		t.all[i] = &anypb.Any{TypeUrl: m.typeURL, Value: v}
		t.delta[i] = &discoveryv3.Resource{Name: m.names[i], Version: m.hashes[i], Resource: t.all[i]}
	}
	t.sotw = prepare(&discoveryv3.DiscoveryResponse{VersionInfo: t.version, Resources: t.all, TypeUrl: t.typeURL})
	t.whole = t.newDiff(t.delta, nil)
	return t
}

// diffFrom is what a proxy holding old lacks of t, computed once per
// older version for every stream that asks.
func (t *table) diffFrom(old *table) *tableDiff {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d, ok := t.diffs[old.version]; ok {
		return d
	}
	var changed []*discoveryv3.Resource
	var removed []string
	for i, name := range t.names {
		if j, ok := old.index[name]; !ok || old.delta[j].Version != t.delta[i].Version {
			changed = append(changed, t.delta[i])
		}
	}
	for _, name := range old.names {
		if _, ok := t.index[name]; !ok {
			removed = append(removed, name)
		}
	}
	d := t.newDiff(changed, removed)
	if t.diffs == nil || len(t.diffs) >= maxDiffs {
		t.diffs = map[string]*tableDiff{}
	}
	t.diffs[old.version] = d
	return d
}

// view is the resources of one view, a table per type in typeOrder.
type view struct{ tables [4]*table }

// only is the part of t's resources named in names (a proxy that
// subscribed to names rather than to all), and its size.
func (t *table) only(names map[string]bool) ([]*anypb.Any, int64) {
	var out []*anypb.Any
	var n int64
	for name := range names {
		if i, ok := t.index[name]; ok {
			out = append(out, t.all[i])
			n += int64(len(t.all[i].Value))
		}
	}
	return out, n
}
