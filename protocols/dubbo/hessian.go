package dubbo

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of lists, maps and objects the walker
// follows, so a hostile body cannot exhaust the goroutine stack.
const maxDepth = 64

// reader walks hessian2 values in one frame body. It reads strings and
// skips everything else without building a value, so walking a body costs
// time linear in its length and no allocation (beyond the ninth class
// definition). It never reads past b, which ends where the frame ends.
type reader struct {
	b     []byte
	pos   int
	depth int
	// Field counts of the class definitions seen so far in this body:
	// object instances name their definition by index.
	ncls int
	cls  [8]int32
	more []int32
}

func (r *reader) errorf(format string, args ...any) error {
	return fmt.Errorf("dubbo: hessian2 at offset %d: "+format, append([]any{r.pos}, args...)...)
}

func (r *reader) truncated() error {
	return fmt.Errorf("dubbo: hessian2 value at offset %d runs past the end of the body", r.pos)
}

func (r *reader) u8() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, r.truncated()
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

// skipN skips n bytes of fixed-size payload.
func (r *reader) skipN(n int) error {
	if n > len(r.b)-r.pos {
		return r.truncated()
	}
	r.pos += n
	return nil
}

// readInt reads a hessian2 int in any of its four forms.
func (r *reader) readInt() (int32, error) {
	tag, err := r.u8()
	if err != nil {
		return 0, err
	}
	switch {
	case tag >= 0x80 && tag <= 0xbf:
		return int32(tag) - 0x90, nil
	case tag >= 0xc0 && tag <= 0xcf:
		if r.pos+1 > len(r.b) {
			return 0, r.truncated()
		}
		v := (int32(tag)-0xc8)<<8 | int32(r.b[r.pos])
		r.pos++
		return v, nil
	case tag >= 0xd0 && tag <= 0xd7:
		if r.pos+2 > len(r.b) {
			return 0, r.truncated()
		}
		v := (int32(tag)-0xd4)<<16 | int32(r.b[r.pos])<<8 | int32(r.b[r.pos+1])
		r.pos += 2
		return v, nil
	case tag == 'I':
		if r.pos+4 > len(r.b) {
			return 0, r.truncated()
		}
		v := int32(binary.BigEndian.Uint32(r.b[r.pos:]))
		r.pos += 4
		return v, nil
	}
	r.pos--
	return 0, r.errorf("expected an int, found tag 0x%02x", tag)
}

// readCount reads a non-negative int that counts values still to come,
// each at least one byte long, so it can never exceed what is left.
func (r *reader) readCount() (int, error) {
	n, err := r.readInt()
	if err != nil {
		return 0, err
	}
	if n < 0 || int(n) > len(r.b)-r.pos {
		return 0, r.errorf("count %d out of range", n)
	}
	return int(n), nil
}

// chunkLen reads the length (in UTF-16 units) of the string chunk whose
// tag was just read, and whether more chunks follow. ok is false when tag
// is not a string tag.
func (r *reader) chunkLen(tag byte) (n int, final, ok bool, err error) {
	switch {
	case tag <= 0x1f:
		return int(tag), true, true, nil
	case tag >= 0x30 && tag <= 0x33:
		c, err := r.u8()
		return int(tag-0x30)<<8 | int(c), true, true, err
	case tag == 'S' || tag == 'R':
		if r.pos+2 > len(r.b) {
			return 0, false, true, r.truncated()
		}
		n = int(binary.BigEndian.Uint16(r.b[r.pos:]))
		r.pos += 2
		return n, tag == 'S', true, nil
	}
	return 0, false, false, nil
}

// walkChars returns the offset just past units UTF-16 code units of UTF-8
// text starting at r.pos, and whether the text may hold a surrogate sent
// as three bytes (lead byte 0xed). A character of four UTF-8 bytes is a
// surrogate pair, two units; Java sends pairs as two three-byte
// sequences instead, one unit each.
func (r *reader) walkChars(units int) (end int, surrogates bool, err error) {
	b, p := r.b, r.pos
	if units > len(b)-p {
		return 0, false, r.truncated()
	}
	// ASCII, eight bytes at a time: one byte is one unit.
	for units >= 8 && binary.LittleEndian.Uint64(b[p:])&0x8080808080808080 == 0 {
		p += 8
		units -= 8
	}
	for units > 0 {
		if p >= len(b) {
			return 0, false, r.truncated()
		}
		c := b[p]
		switch {
		case c < 0x80:
			p++
			units--
		case c < 0xc0:
			return 0, false, fmt.Errorf("dubbo: hessian2 at offset %d: bad UTF-8 byte 0x%02x in string", p, c)
		case c < 0xe0:
			p += 2
			units--
		case c < 0xf0:
			surrogates = surrogates || c == 0xed
			p += 3
			units--
		case c < 0xf8 && units >= 2:
			p += 4
			units -= 2
		default:
			return 0, false, fmt.Errorf("dubbo: hessian2 at offset %d: bad UTF-8 byte 0x%02x in string", p, c)
		}
	}
	if p > len(b) {
		return 0, false, r.truncated()
	}
	return p, surrogates, nil
}

// appendString reads a string (or null, as "") and appends its UTF-8 text
// to dst. ok is false, with nothing consumed, when the next value is
// neither a string nor null.
func (r *reader) appendString(dst []byte) (out []byte, ok bool, err error) {
	if r.pos >= len(r.b) {
		return dst, false, r.truncated()
	}
	if r.b[r.pos] == 'N' {
		r.pos++
		return dst, true, nil
	}
	start, surrogates := len(dst), false
	for first := true; ; first = false {
		tag := r.b[r.pos]
		r.pos++
		n, final, isStr, err := r.chunkLen(tag)
		if !isStr {
			r.pos--
			if first {
				return dst, false, nil
			}
			return dst, false, r.errorf("expected a string chunk, found tag 0x%02x", tag)
		}
		if err != nil {
			return dst, true, err
		}
		end, sur, err := r.walkChars(n)
		if err != nil {
			return dst, true, err
		}
		surrogates = surrogates || sur
		dst = append(dst, r.b[r.pos:end]...)
		r.pos = end
		if final {
			break
		}
		if r.pos >= len(r.b) {
			return dst, true, r.truncated()
		}
	}
	if surrogates {
		dst = dst[:start+joinSurrogates(dst[start:])]
	}
	return dst, true, nil
}

// joinSurrogates rewrites, in place, each surrogate pair that Java sent as
// two three-byte sequences into one four-byte UTF-8 character, so header
// values are valid Go UTF-8. It returns the new length.
func joinSurrogates(b []byte) int {
	w := 0
	for i := 0; i < len(b); {
		if i+6 <= len(b) && b[i] == 0xed && b[i+1]&0xf0 == 0xa0 && b[i+3] == 0xed && b[i+4]&0xf0 == 0xb0 {
			hi := rune(b[i+1]&0x0f)<<6 | rune(b[i+2]&0x3f)
			lo := rune(b[i+4]&0x0f)<<6 | rune(b[i+5]&0x3f)
			w += utf8.EncodeRune(b[w:], 0x10000+hi<<10|lo)
			i += 6
			continue
		}
		b[w] = b[i]
		w++
		i++
	}
	return w
}

// skipStringChunks skips the rest of a string whose first tag was read.
func (r *reader) skipStringChunks(tag byte) error {
	for {
		n, final, ok, err := r.chunkLen(tag)
		if !ok {
			r.pos--
			return r.errorf("expected a string chunk, found tag 0x%02x", tag)
		}
		if err != nil {
			return err
		}
		if r.pos, _, err = r.walkChars(n); err != nil {
			return err
		}
		if final {
			return nil
		}
		if tag, err = r.u8(); err != nil {
			return err
		}
	}
}

// skipBinaryChunks skips the rest of a binary value whose first tag was
// read: 'A' chunks, then a final 'B' or compact chunk.
func (r *reader) skipBinaryChunks(tag byte) error {
	for {
		var n int
		switch {
		case tag == 'A' || tag == 'B':
			if r.pos+2 > len(r.b) {
				return r.truncated()
			}
			n = int(binary.BigEndian.Uint16(r.b[r.pos:]))
			r.pos += 2
		case tag >= 0x20 && tag <= 0x2f:
			n = int(tag - 0x20)
		case tag >= 0x34 && tag <= 0x37:
			c, err := r.u8()
			if err != nil {
				return err
			}
			n = int(tag-0x34)<<8 | int(c)
		default:
			r.pos--
			return r.errorf("expected a binary chunk, found tag 0x%02x", tag)
		}
		if err := r.skipN(n); err != nil {
			return err
		}
		if tag != 'A' {
			return nil
		}
		var err error
		if tag, err = r.u8(); err != nil {
			return err
		}
	}
}

func isStringTag(tag byte) bool {
	return tag <= 0x1f || (tag >= 0x30 && tag <= 0x33) || tag == 'S' || tag == 'R'
}

// skipType skips the type of a typed list or map: a string, or an int
// naming a type seen before.
func (r *reader) skipType() error {
	if r.pos >= len(r.b) {
		return r.truncated()
	}
	if tag := r.b[r.pos]; isStringTag(tag) {
		r.pos++
		return r.skipStringChunks(tag)
	}
	_, err := r.readInt()
	return err
}

// chunkUnits is the longest string chunk putString writes, in UTF-16
// units, as Java's Hessian2Output does.
const chunkUnits = 0x8000

// putString appends s as a hessian2 string: the compact forms when short,
// 'R' chunks of chunkUnits then a final chunk when long. Characters
// outside the BMP are written as two three-byte surrogates (what Java
// reads), never split across chunks; invalid UTF-8 becomes U+FFFD.
func putString(dst []byte, s string) []byte {
	if len(s) <= chunkUnits && isASCII(s) {
		return append(putChunkHeader(dst, len(s), true), s...)
	}
	for {
		units, i := 0, 0
		for i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			u := 1
			if r > 0xffff {
				u = 2
			}
			if units+u > chunkUnits {
				break
			}
			units += u
			i += size
		}
		final := i == len(s)
		dst = putChunkHeader(dst, units, final)
		for _, r := range s[:i] {
			switch {
			case r < utf8.RuneSelf:
				dst = append(dst, byte(r))
			case r > 0xffff:
				r -= 0x10000
				dst = putUnit(dst, 0xd800+r>>10)
				dst = putUnit(dst, 0xdc00+r&0x3ff)
			default: // includes utf8.RuneError for invalid bytes
				dst = utf8.AppendRune(dst, r)
			}
		}
		if final {
			return dst
		}
		s = s[i:]
	}
}

// putUnit appends one UTF-16 unit (here a surrogate) as three bytes.
func putUnit(dst []byte, u rune) []byte {
	return append(dst, byte(0xe0|u>>12), byte(0x80|(u>>6)&0x3f), byte(0x80|u&0x3f))
}

func putChunkHeader(dst []byte, units int, final bool) []byte {
	switch {
	case !final:
		return append(dst, 'R', byte(units>>8), byte(units))
	case units <= 0x1f:
		return append(dst, byte(units))
	case units <= 0x3ff:
		return append(dst, byte(0x30+units>>8), byte(units))
	}
	return append(dst, 'S', byte(units>>8), byte(units))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
