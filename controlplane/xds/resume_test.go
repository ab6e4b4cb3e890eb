package xds

import (
	"fmt"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// records are have as a deltaRequest's initial: marshaled as a proxy
// sends it and decoded by the codec.
func records(t testing.TB, have map[string]string) initialVersions {
	t.Helper()
	b, err := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{InitialResourceVersions: have})
	if err != nil {
		t.Fatal(err)
	}
	var r deltaRequest
	if err := (codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &r); err != nil {
		t.Fatal(err)
	}
	return r.initial
}

func TestDecodeDeltaKeepsTheRest(t *testing.T) {
	want := &discoveryv3.DeltaDiscoveryRequest{
		Node: &corev3.Node{Id: "n"}, TypeUrl: "t", ResourceNamesSubscribe: []string{"a", "b"},
		InitialResourceVersions: map[string]string{"a": "1", "b": "2"}, ResponseNonce: "7",
	}
	b, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	// One more record after the nonce (field 6): the records lie apart.
	more, err := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{InitialResourceVersions: map[string]string{"c": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, more...)
	want.InitialResourceVersions["c"] = "3"
	var r deltaRequest
	if err := (codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &r); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for in := r.initial.records; len(in) > 0; {
		_, _, n := protowire.ConsumeTag(in)
		name, version, err := versionRecord(in[n:], true)
		if err != nil {
			t.Fatal(err)
		}
		got[string(name)] = string(version)
		in = in[n+protowire.ConsumeFieldValue(initialField, protowire.BytesType, in[n:]):]
	}
	if fmt.Sprint(got) != fmt.Sprint(want.InitialResourceVersions) {
		t.Errorf("initial: %v, want %v", got, want.InitialResourceVersions)
	}
	want.InitialResourceVersions = nil
	if !proto.Equal(r.DeltaDiscoveryRequest, want) {
		t.Errorf("decoded %v, want %v", r.DeltaDiscoveryRequest, want)
	}

	// Without initial versions, as gRPC's codec decodes it.
	r = deltaRequest{}
	if err := (codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:0])}, &r); err != nil || r.initial.records != nil {
		t.Errorf("empty request: initial %v, error %v", r.initial.records, err)
	}
}

func TestDecodeDeltaRefusesBadRecords(t *testing.T) {
	entry := func(name string) []byte {
		e := protowire.AppendTag(nil, 1, protowire.BytesType)
		e = protowire.AppendString(e, name)
		b := protowire.AppendTag(nil, initialField, protowire.BytesType)
		return protowire.AppendBytes(b, e)
	}
	good := entry("a")
	for name, b := range map[string][]byte{
		"not UTF-8": entry("\xff"),
		"truncated": good[:len(good)-1],
		"bad entry": protowire.AppendBytes(protowire.AppendTag(nil, initialField, protowire.BytesType), []byte{0xff}),
	} {
		var r deltaRequest
		if err := (codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &r); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestDiffFromRecordsLastVersionWins(t *testing.T) {
	tb := endpointTable(t, 2, func(int) uint32 { return 1 })
	rec := func(name, version string) []byte {
		b, _ := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{InitialResourceVersions: map[string]string{name: version}})
		return b
	}
	// c0 named twice, stale then current; "gone" twice.
	b := slices.Concat(rec("c0", "stale"), rec("c0", tb.delta[0].Version), rec("c1", tb.delta[1].Version), rec("gone", "x"), rec("gone", "y"))
	var r deltaRequest
	if err := (codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &r); err != nil {
		t.Fatal(err)
	}
	d := tb.diffFromRecords(r.initial)
	if len(d.changed) != 0 || !slices.Equal(d.removed, []string{"gone"}) {
		t.Errorf("changed %d, removed %v; want 0, [gone]", len(d.changed), d.removed)
	}
}

// TestDiffFromRecordsDigest: a proxy holding exactly the table gets
// nothing; one version different, in a set of the same size, that
// resource.
func TestDiffFromRecordsDigest(t *testing.T) {
	tb := endpointTable(t, 3, func(int) uint32 { return 1 })
	have := map[string]string{}
	for i, n := range tb.names {
		have[n] = tb.delta[i].Version
	}
	if d := tb.diffFromRecords(records(t, have)); len(d.changed) != 0 || len(d.removed) != 0 {
		t.Errorf("up to date: changed %d, removed %v", len(d.changed), d.removed)
	}
	have["c1"] = "stale"
	if d := tb.diffFromRecords(records(t, have)); len(d.changed) != 1 || d.changed[0].GetName() != "c1" || len(d.removed) != 0 {
		t.Errorf("c1 stale: changed %v, removed %v", d.changed, d.removed)
	}
}

// BenchmarkResume10000 is a reconnecting proxy's request naming the
// 10,000 resources it has, decoded and compared with the table (one op):
// current, all up to date (the digest's way); stale, one out of date
// (name by name). Neither allocates per resource.
func BenchmarkResume10000(b *testing.B) {
	tb := endpointTable(b, 10000, func(int) uint32 { return 1 })
	for _, bc := range []struct {
		name  string
		stale int
	}{{"current", 0}, {"stale", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			have := make(map[string]string, len(tb.names))
			for i, n := range tb.names {
				have[n] = tb.delta[i].Version
			}
			for i := range bc.stale {
				have[tb.names[i]] = "stale"
			}
			msg, err := proto.Marshal(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: tb.typeURL, InitialResourceVersions: have})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				var r deltaRequest
				if err := (codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(msg)}, &r); err != nil {
					b.Fatal(err)
				}
				if d := tb.diffFromRecords(r.initial); len(d.changed) != bc.stale {
					b.Fatalf("%d changed, want %d", len(d.changed), bc.stale)
				}
			}
		})
	}
}
