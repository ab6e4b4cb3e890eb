package triple

import (
	"fmt"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// A connection's header blocks are read with its own HPACK decoder into
// one reused slice, rather than by the x/net Framer's ReadMetaHeaders,
// which allocates a frame and grows a new slice of fields for every block:
// those were nearly all the proxy's allocations on a Triple call
// (docs/benchmarks.md, Triple, 2026-12-07). The fields are checked as
// ReadMetaHeaders checks them; any fault closes the connection, and so
// does a header list over the limit (maxMessageBytes), which
// ReadMetaHeaders cut short without a word.

// blockRead is the header block being read: its fields, and what the
// checks need.
type blockRead struct {
	fields     []hpack.HeaderField
	err        error
	left       int // bytes of the header list still allowed (RFC 9113, section 6.5.2)
	sawRegular bool
}

// emit is the HPACK decoder's: it checks and keeps one field.
func (b *blockRead) emit(f hpack.HeaderField) {
	if b.err != nil {
		return
	}
	pseudo := f.IsPseudo()
	switch {
	case !httpguts.ValidHeaderFieldValue(f.Value):
		b.err = fmt.Errorf("triple: invalid value of header %q", f.Name) // the value may be secret
	case pseudo && b.sawRegular:
		b.err = fmt.Errorf("triple: pseudo-header %q after a regular header", f.Name)
	case !pseudo && !validWireName(f.Name):
		b.err = fmt.Errorf("triple: invalid header name %q", f.Name)
	case int(f.Size()) > b.left:
		b.err = fmt.Errorf("triple: header list exceeds the limit")
	}
	if b.err != nil {
		return
	}
	b.sawRegular = b.sawRegular || !pseudo
	b.left -= int(f.Size())
	b.fields = append(b.fields, f)
}

// validWireName reports whether name is a header name HTTP/2 allows: a
// token, lower case.
func validWireName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !httpguts.IsTokenRune(r) || 'A' <= r && r <= 'Z' {
			return false
		}
	}
	return true
}

// checkPseudos checks the pseudo-headers of a block: known ones, each at
// most once, not a request's and a response's together.
func checkPseudos(fields []hpack.HeaderField) error {
	request, response := false, false
	for i, f := range fields {
		if !f.IsPseudo() {
			break
		}
		switch f.Name {
		case ":method", ":path", ":scheme", ":authority", ":protocol":
			request = true
		case ":status":
			response = true
		default:
			return fmt.Errorf("triple: unknown pseudo-header %q", f.Name)
		}
		for _, g := range fields[:i] {
			if g.Name == f.Name {
				return fmt.Errorf("triple: duplicate pseudo-header %q", f.Name)
			}
		}
	}
	if request && response {
		return fmt.Errorf("triple: a request's and a response's pseudo-headers in one block")
	}
	return nil
}

// headerBlock reads the header block f begins, with its CONTINUATION
// frames (whole in the bytes of this Decode: frameEnd), then hands it to
// headers. Each fragment is decoded before the next frame is read: the
// Framer reuses its buffer.
func (d *connDecoder) headerBlock(f *http2.HeadersFrame, msg *protocols.Message) error {
	b := &d.block
	clear(b.fields)
	b.fields, b.err, b.left, b.sawRegular = b.fields[:0], nil, d.c.maxMessage, false
	id, ended := f.StreamID, f.StreamEnded()
	frag, last := f.HeaderBlockFragment(), f.HeadersEnded()
	if last {
		if fields, ok := d.recall.recall(frag); ok { // recall.go
			b.fields = append(b.fields, fields...)
			return d.headers(id, ended, msg)
		}
	}
	first, joined := frag, !last
	for {
		if _, err := d.hdec.Write(frag); err != nil {
			return fmt.Errorf("triple: header block: %w", err)
		}
		if b.err != nil {
			return b.err // the connection closes: the rest is not decoded
		}
		if last {
			break
		}
		next, err := d.fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("triple: %w", err)
		}
		c, ok := next.(*http2.ContinuationFrame)
		if !ok {
			return fmt.Errorf("triple: %v frame inside a header block", next.Header().Type)
		}
		frag, last = c.HeaderBlockFragment(), c.HeadersEnded()
	}
	if err := d.hdec.Close(); err != nil {
		return fmt.Errorf("triple: header block: %w", err)
	}
	if b.err != nil {
		return b.err
	}
	if err := checkPseudos(b.fields); err != nil {
		return err
	}
	d.recall.decoded(first, joined, b.fields)
	err := d.headers(id, ended, msg)
	if cap(b.fields) > maxSpareFields {
		b.fields = nil // a large block's room is not kept between blocks
	}
	return err
}
