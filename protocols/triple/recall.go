package triple

import (
	"bytes"

	"golang.org/x/net/http2/hpack"
)

// A peer that repeats its calls sends the same header blocks again and
// again, and once its fields are in the HPACK tables those blocks are
// indexes only: a few bytes that decode to the same fields as long as the
// decoder's dynamic table has not changed. The connection decoder keeps
// the fields of the last few such blocks (recall), so a repeated block
// costs a comparison instead of a decoding and the checks of its fields
// (docs/benchmarks.md, Triple, 2026-12-07). A block with any other
// representation may change the table: it makes every kept block stale.

const (
	recallSlots = 4
	// recallMax is the largest block kept: an indexed field is one or
	// two bytes.
	recallMax = 64
)

// recallMemo is the fields of one indexes-only block, valid while the
// decoder's table is of generation gen.
type recallMemo struct {
	block  []byte
	fields []hpack.HeaderField
	gen    uint64
}

// recaller keeps a connection decoder's recently decoded blocks.
type recaller struct {
	gen  uint64 // counts the blocks that may have changed the table
	memo [recallSlots]recallMemo
	next int
}

// recall returns the fields of block if it was decoded and kept since
// the table last changed.
func (r *recaller) recall(block []byte) ([]hpack.HeaderField, bool) {
	for i := range r.memo {
		if m := &r.memo[i]; m.gen == r.gen && m.fields != nil && bytes.Equal(m.block, block) {
			return m.fields, true
		}
	}
	return nil, false
}

// decoded takes a block just decoded whole to fields (checked): kept when
// it is indexes only, else the kept blocks go stale. joined is set when
// the block came in more than one fragment (block is then its first).
func (r *recaller) decoded(block []byte, joined bool, fields []hpack.HeaderField) {
	if joined || !indexesOnly(block) {
		r.gen++
		return
	}
	if len(block) > recallMax {
		return
	}
	m := &r.memo[r.next]
	r.next = (r.next + 1) % recallSlots
	m.block = append(m.block[:0], block...)
	m.fields = append(m.fields[:0], fields...)
	m.gen = r.gen
}

// indexesOnly reports whether block is made of indexed header fields only
// (RFC 7541, section 6.1: a 1 bit, then the index as an integer with a
// 7-bit prefix), which leave the dynamic table as it is.
func indexesOnly(block []byte) bool {
	for i := 0; i < len(block); {
		if block[i]&0x80 == 0 {
			return false
		}
		if block[i]&0x7f != 0x7f {
			i++
			continue
		}
		// The index continues in bytes with the high bit set, up to one
		// without it.
		for i++; i < len(block) && block[i]&0x80 != 0; i++ {
		}
		if i == len(block) {
			return false
		}
		i++
	}
	return len(block) > 0
}
