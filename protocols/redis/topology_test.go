package redis

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func readCluster(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "cluster", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRedirect(t *testing.T) {
	for _, tc := range []struct {
		reply string
		from  string
		want  Redirect
		ok    bool
	}{
		{string(readCluster(t, "moved.bin")), "127.0.0.1:17001", Redirect{Slot: 12182, Addr: "127.0.0.1:17003"}, true},
		{string(readCluster(t, "ask.bin")), "127.0.0.1:17003", Redirect{Ask: true, Slot: 12182, Addr: "127.0.0.1:17001"}, true},
		{"-MOVED 1 :6380\r\n", "10.0.0.1:6379", Redirect{Slot: 1, Addr: "10.0.0.1:6380"}, true},
		{"-MOVED 1 [::1]:6380\r\n", "", Redirect{Slot: 1, Addr: "[::1]:6380"}, true},
		{"-MOVED 16384 127.0.0.1:1\r\n", "", Redirect{}, false},
		{"-MOVED x 127.0.0.1:1\r\n", "", Redirect{}, false},
		{"-MOVED 1\r\n", "", Redirect{}, false},
		{string(readCluster(t, "crossslot.bin")), "", Redirect{}, false},
	} {
		got, ok := ParseRedirect([]byte(tc.reply), tc.from)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ParseRedirect(%q) = %+v, %v; want %+v, %v", tc.reply, got, ok, tc.want, tc.ok)
		}
	}
}

// capturedShards is the map of the 6-node cluster the captures in
// testdata/cluster came from (redis-cli --cluster create, 3 primaries
// with a replica each).
var capturedShards = []Shard{
	{Slots: [][2]int{{10923, 16383}}, Primary: "127.0.0.1:17003", Replicas: []string{"127.0.0.1:17004"}},
	{Slots: [][2]int{{0, 5460}}, Primary: "127.0.0.1:17001", Replicas: []string{"127.0.0.1:17005"}},
	{Slots: [][2]int{{5461, 10922}}, Primary: "127.0.0.1:17002", Replicas: []string{"127.0.0.1:17006"}},
}

func TestParseShards(t *testing.T) {
	for _, name := range []string{"shards-resp2.bin", "shards-resp3.bin"} {
		got, err := ParseShards(readCluster(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !sameShards(got, capturedShards) {
			t.Errorf("%s: %+v", name, got)
		}
	}
	if _, err := ParseShards([]byte("-ERR unknown subcommand 'SHARDS'\r\n")); err == nil {
		t.Error("an error reply parsed")
	}
}

func TestParseSlots(t *testing.T) {
	got, err := ParseSlots(readCluster(t, "slots-resp2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !sameShards(got, capturedShards) {
		t.Errorf("%+v", got)
	}
}

// sameShards compares shard lists whatever their order.
func sameShards(a, b []Shard) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || reflect.DeepEqual(x, y)
		}
		if !found {
			return false
		}
	}
	return true
}

// FuzzClusterReplies feeds arbitrary bytes to the topology parsers: they
// must not panic, and what they accept must be a usable map (slots in
// range, a primary per shard). Seeds: replies captured from a real
// cluster (testdata/cluster).
func FuzzClusterReplies(f *testing.F) {
	addSeeds(f, "cluster")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) ([]Shard, error){ParseShards, ParseSlots} {
			shards, err := parse(b)
			if err != nil {
				continue
			}
			for _, s := range shards {
				if s.Primary == "" || len(s.Slots) == 0 {
					t.Fatalf("shard %+v", s)
				}
				for _, r := range s.Slots {
					if r[0] < 0 || r[0] > r[1] || r[1] >= SlotCount {
						t.Fatalf("range %v", r)
					}
				}
			}
		}
		if r, ok := ParseRedirect(b, "127.0.0.1:1"); ok && (r.Slot < 0 || r.Slot >= SlotCount || r.Addr == "") {
			t.Fatalf("redirect %+v", r)
		}
	})
}

func TestVariant(t *testing.T) {
	base := newCodec(t, `{"upstreamPassword": "pw"}`)
	ro := base.Variant(true, 0).(*Codec)
	if ro != base.Variant(true, 0) || base.Variant(false, 0) != base || ro.Variant(false, 0) != base || ro.Base() != base {
		t.Fatal("variants are not one value each")
	}
	out, n := ro.Handshake(nil)
	want := string(AppendAuth(nil, "", "pw")) + string(mb("READONLY"))
	if string(out) != want || n != 2 {
		t.Errorf("Handshake = %q, %d", out, n)
	}
	db := base.Variant(true, 3).(*Codec)
	out, n = db.Reset(nil)
	want = string(mb("RESET")) + string(AppendAuth(nil, "", "pw")) + string(mb("READONLY")) + string(mb("SELECT", "3"))
	if string(out) != want || n != 4 {
		t.Errorf("Reset = %q, %d", out, n)
	}
}
