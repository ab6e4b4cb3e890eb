package upstream

import "testing"

// Request IDs wrap before they outgrow the narrowest codec ID (Thrift's
// signed 32-bit seqid), skipping 0 and IDs still in flight.
func TestAllocIDWrapsAndSkipsBusyIDs(t *testing.T) {
	q := &byID{calls: map[uint64]*Call{maxID: {}, 1: {}}, last: maxID - 2}
	for _, want := range []uint64{maxID - 1, 2, 3} {
		if got := q.id(nil); got != want {
			t.Fatalf("id = %d, want %d", got, want)
		}
	}
}
