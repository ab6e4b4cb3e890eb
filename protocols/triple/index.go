package triple

import (
	"bytes"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The header blocks the proxy sends a peer, indexed. The codec's own form
// writes literal blocks that need no connection state (frame.go), which
// every peer can decode but must parse field by field, every block. What a
// connection sends goes out through its send state (send.go) in the order
// it is written, so there the blocks can be encoded again with an HPACK
// encoder of the connection's own, whose dynamic table the peer's decoder
// mirrors: a peer then decodes a repeated block as a few indexes into its
// table (docs/benchmarks.md, Triple, 2026-12-07).
//
// Only blocks sent at once are indexed: a block held back by the peer's
// flow control, or written outside the send state (the proxy's replies
// written whole, GOAWAYs), stays literal, which changes no table and so
// may reach the peer in any order.
//
// A field its sender marked never-indexed stays so (RFC 7541, section
// 6.2.3: the own form keeps the mark), and credentials (neverIndexed) are
// always sent so (section 7.1.3): the proxy's connection to a server
// carries many clients' calls, and an indexed token would share a table
// with other clients' headers.
//
// Encoding a block again means decoding the own form first: a memo keeps
// the indexed form of the last few own-form blocks, valid while the
// encoder's table has not changed since, so a connection whose calls
// repeat their headers pays a comparison per block. Blocks that keep
// missing the memo (a header whose value differs on every call, such as
// grpc-timeout or traceparent) would pay the whole encoding every time:
// after missRun such blocks in a row the connection sends literal blocks
// for skipBlocks blocks.

const (
	memoSlots  = 4
	missRun    = 16
	skipBlocks = 256
	// memoMax is the largest block the memo keeps, keptMax the largest
	// scratch room kept between messages: a connection's one large
	// message does not cost it that much memory for its life.
	memoMax = 4 << 10
	keptMax = 64 << 10
)

// indexer is one connection's HPACK encoder for what the proxy sends,
// used under the send state's lock.
type indexer struct {
	enc   *hpack.Encoder
	block bytes.Buffer
	// gen counts the changes of the encoder's dynamic table: a memo of
	// another generation is stale.
	gen  uint64
	memo [memoSlots]indexMemo
	next int // the memo slot to fill next
	// misses is how many blocks in a row missed the memo; skip, how many
	// blocks are still to be sent literal.
	misses, skip int
	tail         []byte // scratch: the frames being rewritten
}

// indexMemo is the indexed form of one own-form block, valid while the
// table is of generation gen.
type indexMemo struct {
	own, indexed []byte
	gen          uint64
}

func newIndexer() *indexer {
	x := &indexer{}
	x.enc = hpack.NewEncoder(&x.block)
	return x
}

// setLimit takes the peer's SETTINGS_HEADER_TABLE_SIZE: the encoder's
// table may not be larger (the encoder announces a smaller size in its
// next block).
func (x *indexer) setLimit(v uint32) {
	x.enc.SetMaxDynamicTableSizeLimit(v)
	x.gen++
	x.skip = 0 // the next block announces the new size
}

// frames rewrites the header blocks of the frames at out[start:] (whole
// frames, as the send state has them), indexed; other frames are kept as
// they are.
func (x *indexer) frames(out []byte, start int) []byte {
	// Only what follows the first header block is copied (a part of a
	// stream has none).
	for len(out)-start >= frameHeaderLen {
		h := parseHeader(out[start:])
		if h.typ == http2.FrameHeaders {
			break
		}
		start += frameHeaderLen + h.length
	}
	if len(out)-start < frameHeaderLen {
		return out
	}
	x.tail = append(x.tail[:0], out[start:]...)
	out = out[:start]
	tail := x.tail
	for len(tail) >= frameHeaderLen {
		h := parseHeader(tail)
		n := frameHeaderLen + h.length
		if h.typ != http2.FrameHeaders || h.flags.Has(http2.FlagHeadersPadded|http2.FlagHeadersPriority) {
			out = append(out, tail[:n]...)
			tail = tail[n:]
			continue
		}
		// The block: this HEADERS frame's fragment and its CONTINUATION
		// frames'.
		end, block := n, tail[frameHeaderLen:n]
		joined := false
		for !parseHeader(tail[end-n:]).flags.Has(http2.FlagHeadersEndHeaders) && len(tail) >= end+frameHeaderLen {
			c := parseHeader(tail[end:])
			if !joined {
				block, joined = append([]byte(nil), block...), true
			}
			block = append(block, tail[end+frameHeaderLen:end+frameHeaderLen+c.length]...)
			n = frameHeaderLen + c.length
			end += n
		}
		indexed := x.index(block)
		w := getWriter(out)
		w.frames(h.stream, indexed, h.flags.Has(http2.FlagHeadersEndStream))
		out = w.put()
		tail = tail[end:]
	}
	if cap(x.tail) > keptMax {
		x.tail = nil
	}
	if x.block.Cap() > keptMax {
		x.block = bytes.Buffer{} // the encoder writes to x.block's address
	}
	return out
}

// index returns block, an own-form header block, indexed: from the memo
// when it holds block of the current generation, else encoded again (kept
// in the memo when that changed no table: a block of indexes only); or
// block itself while literal blocks are sent (skip) or when it is not the
// codec's own.
func (x *indexer) index(block []byte) []byte {
	for i := range x.memo {
		m := &x.memo[i]
		if m.gen == x.gen && m.indexed != nil && bytes.Equal(m.own, block) {
			x.misses = 0
			return m.indexed
		}
	}
	if x.skip > 0 {
		x.skip--
		return block
	}
	fields, err := decodeBlock(nil, block, 2*len(block)) // Huffman codes are 5 bits or more
	if err != nil {
		return block
	}
	x.block.Reset()
	changed := false
	for _, f := range fields {
		at := x.block.Len()
		_ = x.enc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value, Sensitive: f.Sensitive || neverIndexed(f.Name)}) // to a bytes.Buffer: no error
		// The first byte of what the field wrote says whether it changed
		// the table: an indexed field (1xxxxxxx) and a literal without
		// indexing (0000xxxx) do not; a literal with incremental indexing
		// (01xxxxxx) and a table size update before it (001xxxxx) do.
		if b := x.block.Bytes()[at]; b&0x80 == 0 && b&0xe0 != 0 {
			changed = true
		}
	}
	if x.misses++; x.misses >= missRun {
		x.misses, x.skip = 0, skipBlocks
	}
	if changed || len(block) > memoMax {
		// Sent again, the same bytes would add to the table again: not
		// kept; nor a large block.
		if changed {
			x.gen++
		}
		return x.block.Bytes()
	}
	m := &x.memo[x.next]
	x.next = (x.next + 1) % memoSlots
	m.own = append(m.own[:0], block...)
	m.indexed = append(m.indexed[:0], x.block.Bytes()...)
	m.gen = x.gen
	return m.indexed
}

// neverIndexed reports whether a field named name carries credentials,
// which are never indexed (RFC 7541, section 7.1.3).
func neverIndexed(name string) bool {
	switch name {
	case "authorization", "proxy-authorization", "cookie", "set-cookie":
		return true
	}
	return false
}
