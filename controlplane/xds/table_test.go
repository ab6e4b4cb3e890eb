package xds

import (
	"fmt"
	"slices"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// endpointTable is the table of n endpoint sets c0…, set i at priority
// prio(i).
func endpointTable(t testing.TB, n int, prio func(int) uint32) *table {
	t.Helper()
	rs := make([]types.Resource, n)
	for i := range n {
		rs[i] = &endpointv3.ClusterLoadAssignment{ClusterName: fmt.Sprintf("c%d", i), Endpoints: []*endpointv3.LocalityLbEndpoints{{Priority: prio(i)}}}
	}
	m, err := newBuilder(nil).marshalSorted(resourcev3.EndpointType, rs)
	if err != nil {
		t.Fatal(err)
	}
	return newTable(m)
}

func TestTableDiff(t *testing.T) {
	old := endpointTable(t, 4, func(int) uint32 { return 1 })
	// c1 changes, c3 goes, c4 comes.
	next := endpointTable(t, 5, func(i int) uint32 { return map[bool]uint32{true: 2, false: 1}[i == 1] })
	next.names, next.all, next.delta = slices.Delete(next.names, 3, 4), slices.Delete(next.all, 3, 4), slices.Delete(next.delta, 3, 4)
	delete(next.index, "c3")
	for i, n := range next.names {
		next.index[n] = i
	}
	next.version = "next"

	d := next.diffFrom(old)
	var changed []string
	for _, r := range d.changed {
		changed = append(changed, r.GetName())
	}
	if !slices.Equal(changed, []string{"c1", "c4"}) || !slices.Equal(d.removed, []string{"c3"}) {
		t.Fatalf("diff: changed %v removed %v; want [c1 c4], [c3]", changed, d.removed)
	}
	if next.diffFrom(old) != d {
		t.Error("the diff from the same version was computed again")
	}
	have := map[string]string{"c0": old.delta[0].Version, "c2": "stale", "gone": "x"}
	d = next.diffFromRecords(records(t, have))
	changed = changed[:0]
	for _, r := range d.changed {
		changed = append(changed, r.GetName())
	}
	if !slices.Equal(changed, []string{"c1", "c2", "c4"}) || !slices.Equal(d.removed, []string{"gone"}) {
		t.Fatalf("diff from versions: changed %v removed %v; want [c1 c2 c4], [gone]", changed, d.removed)
	}
}

// BenchmarkTableDiff10000 is a push's diff of 10,000 endpoint sets with
// one changed: once per pair of versions, whatever the number of
// streams.
func BenchmarkTableDiff10000(b *testing.B) {
	old := endpointTable(b, 10000, func(int) uint32 { return 1 })
	next := endpointTable(b, 10000, func(i int) uint32 { return map[bool]uint32{true: 2, false: 1}[i == 7] })
	b.ReportAllocs()
	for b.Loop() {
		next.diffs = nil
		if d := next.diffFrom(old); len(d.changed) != 1 {
			b.Fatalf("%d changed", len(d.changed))
		}
	}
}
