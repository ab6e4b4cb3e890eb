package upstream

import "testing"

// Request IDs wrap before they outgrow the narrowest codec ID (Thrift's
// signed 32-bit seqid), skipping 0 and IDs still in flight.
func TestAllocIDWrapsAndSkipsBusyIDs(t *testing.T) {
	cn := &conn{byID: map[uint64]*Call{maxID: {}, 1: {}}, nextID: maxID - 2}
	for _, want := range []uint64{maxID - 1, 2, 3} {
		if got := cn.allocID(); got != want {
			t.Fatalf("allocID = %d, want %d", got, want)
		}
	}
}
