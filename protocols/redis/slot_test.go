package redis

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// keySlots are what redis-server 7.0.15's CLUSTER KEYSLOT answered for
// these keys (docs/redis-cluster.md: hash tags).
var keySlots = map[string]int{
	"":                0,
	"a":               15495,
	"foo":             12182,
	"bar":             5061,
	"{user:1}:cart":   10778,
	"{user:1}:orders": 10778,
	"x{}y":            16116,
	"{}":              15257,
	"{a}{b}":          15495,
	"foo{bar}{zap}":   5061,
	"{{a}}":           10276,
	"a{b":             13340,
	"123456789":       12739,
	"user:1000":       1649,
	"é":               10180,
	"k3931":           12182,
}

func TestSlot(t *testing.T) {
	for key, want := range keySlots {
		if got := Slot([]byte(key)); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
		if got := SlotString(key); got != want {
			t.Errorf("SlotString(%q) = %d, want %d", key, got, want)
		}
	}
}

func TestKeySlots(t *testing.T) {
	c := newCodec(t, "")
	for _, tc := range []struct {
		name string
		req  []byte
		slot int
		one  bool
	}{
		{"keyless", mb("TIME"), -1, true},
		{"one key", mb("GET", "foo"), 12182, true},
		{"same slot", mb("RENAME", "{user:1}:cart", "{user:1}:orders"), 10778, true},
		{"cross slot", mb("RENAME", "foo", "bar"), 12182, false},
		{"numkeys", mb("EVAL", "return 1", "2", "foo", "k3931"), 12182, true},
		{"numkeys cross", mb("EVAL", "return 1", "2", "foo", "bar"), 12182, false},
		{"streams cross", mb("XREAD", "STREAMS", "foo", "bar", "0", "0"), 12182, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m protocols.Message
			if _, err := c.Decode(tc.req, &m); err != nil {
				t.Fatal(err)
			}
			slot, one := KeySlots(&m)
			if slot != tc.slot || one != tc.one {
				t.Errorf("KeySlots = %d, %v; want %d, %v", slot, one, tc.slot, tc.one)
			}
		})
	}
}

func BenchmarkSlotString(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		SlotString("{user:1000}:profile")
	}
}
