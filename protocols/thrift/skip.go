package thrift

import (
	"encoding/binary"
	"fmt"
)

// maxDepth bounds struct and container nesting while skipping.
const maxDepth = 64

// Binary protocol type ids.
const (
	tStop   = 0
	tBool   = 2
	tByte   = 3
	tDouble = 4
	tI16    = 6
	tI32    = 8
	tI64    = 10
	tString = 11
	tStruct = 12
	tMap    = 13
	tSet    = 14
	tList   = 15
	tUUID   = 16
)

// Compact protocol type ids.
const (
	cTrue   = 1
	cFalse  = 2
	cByte   = 3
	cI16    = 4
	cI32    = 5
	cI64    = 6
	cDouble = 7
	cBinary = 8
	cList   = 9
	cSet    = 10
	cMap    = 11
	cStruct = 12
	cUUID   = 13
)

// skipper walks values without building them. Every step checks the bytes
// left, so a walk costs time linear in len(b) and never reads past it; it
// returns errShort when b ends inside the value.
type skipper struct {
	b       []byte
	compact bool
}

// skipStruct skips a struct starting at pos and returns the offset after it.
func (s *skipper) skipStruct(pos, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("thrift: nesting deeper than %d", maxDepth)
	}
	for {
		if pos >= len(s.b) {
			return 0, errShort
		}
		h := s.b[pos]
		pos++
		if h == tStop {
			return pos, nil
		}
		var err error
		if s.compact {
			if h>>4 == 0 { // long form: the field id follows as a zigzag varint
				_, n, err := uvarint(s.b[pos:], 3)
				if err != nil {
					return 0, err
				}
				pos += n
			}
			t := h & 0x0f
			if t == cTrue || t == cFalse {
				continue // the value is the type
			}
			pos, err = s.skip(pos, t, depth+1)
		} else {
			pos += 2 // field id
			pos, err = s.skip(pos, h, depth+1)
		}
		if err != nil {
			return 0, err
		}
	}
}

// fixedSize is the wire size of a fixed-width type, or 0.
func (s *skipper) fixedSize(t byte) int {
	if s.compact {
		switch t {
		case cTrue, cFalse, cByte:
			return 1
		case cDouble:
			return 8
		case cUUID:
			return 16
		}
		return 0
	}
	switch t {
	case tBool, tByte:
		return 1
	case tI16:
		return 2
	case tI32:
		return 4
	case tDouble, tI64:
		return 8
	case tUUID:
		return 16
	}
	return 0
}

// skip skips one value of type t at pos.
func (s *skipper) skip(pos int, t byte, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("thrift: nesting deeper than %d", maxDepth)
	}
	if pos > len(s.b) {
		return 0, errShort
	}
	if n := s.fixedSize(t); n > 0 {
		if len(s.b)-pos < n {
			return 0, errShort
		}
		return pos + n, nil
	}
	if s.compact {
		return s.skipCompact(pos, t, depth)
	}
	switch t {
	case tString:
		n, err := s.count(pos)
		if err != nil {
			return 0, err
		}
		return s.advance(pos+4, n)
	case tStruct:
		return s.skipStruct(pos, depth)
	case tList, tSet:
		if len(s.b)-pos < 5 {
			return 0, errShort
		}
		n, err := s.count(pos + 1)
		if err != nil {
			return 0, err
		}
		return s.skipElems(pos+5, s.b[pos], n, depth)
	case tMap:
		if len(s.b)-pos < 6 {
			return 0, errShort
		}
		k, v := s.b[pos], s.b[pos+1]
		n, err := s.count(pos + 2)
		if err != nil {
			return 0, err
		}
		pos += 6
		for i := 0; i < n; i++ {
			if pos, err = s.skip(pos, k, depth+1); err != nil {
				return 0, err
			}
			if pos, err = s.skip(pos, v, depth+1); err != nil {
				return 0, err
			}
		}
		return pos, nil
	}
	return 0, fmt.Errorf("thrift: unknown binary type %d", t)
}

// count reads a non-negative binary i32 size at pos.
func (s *skipper) count(pos int) (int, error) {
	if len(s.b)-pos < 4 {
		return 0, errShort
	}
	n := int64(int32(binary.BigEndian.Uint32(s.b[pos:])))
	if n < 0 {
		return 0, fmt.Errorf("thrift: negative size %d", n)
	}
	return int(n), nil
}

// advance moves n bytes past pos.
func (s *skipper) advance(pos, n int) (int, error) {
	if n < 0 || len(s.b)-pos < n {
		return 0, errShort
	}
	return pos + n, nil
}

// skipElems skips n list or set elements of type t.
func (s *skipper) skipElems(pos int, t byte, n, depth int) (int, error) {
	if size := s.fixedSize(t); size > 0 {
		if int64(n)*int64(size) > int64(len(s.b)-pos) {
			return 0, errShort
		}
		return pos + n*size, nil
	}
	var err error
	for i := 0; i < n; i++ {
		if pos, err = s.skip(pos, t, depth+1); err != nil {
			return 0, err
		}
	}
	return pos, nil
}

func (s *skipper) skipCompact(pos int, t byte, depth int) (int, error) {
	switch t {
	case cI16, cI32, cI64:
		_, n, err := uvarint(s.b[pos:], 10)
		return pos + n, err
	case cBinary:
		l, n, err := uvarint(s.b[pos:], 5)
		if err != nil {
			return 0, err
		}
		if l > uint64(len(s.b)) {
			return 0, errShort
		}
		return s.advance(pos+n, int(l))
	case cStruct:
		return s.skipStruct(pos, depth)
	case cList, cSet:
		if pos >= len(s.b) {
			return 0, errShort
		}
		h := s.b[pos]
		pos++
		n := uint64(h >> 4)
		if n == 15 {
			var m int
			var err error
			if n, m, err = uvarint(s.b[pos:], 5); err != nil {
				return 0, err
			}
			pos += m
		}
		if n > uint64(len(s.b)) {
			return 0, errShort
		}
		return s.skipElems(pos, h&0x0f, int(n), depth)
	case cMap:
		n, m, err := uvarint(s.b[pos:], 5)
		if err != nil {
			return 0, err
		}
		pos += m
		if n == 0 {
			return pos, nil
		}
		if n > uint64(len(s.b)) {
			return 0, errShort
		}
		if pos >= len(s.b) {
			return 0, errShort
		}
		k, v := s.b[pos]>>4, s.b[pos]&0x0f
		pos++
		for i := uint64(0); i < n; i++ {
			if pos, err = s.skip(pos, k, depth+1); err != nil {
				return 0, err
			}
			if pos, err = s.skip(pos, v, depth+1); err != nil {
				return 0, err
			}
		}
		return pos, nil
	}
	return 0, fmt.Errorf("thrift: unknown compact type %d", t)
}

// exceptionType reads field 2 (the i32 type) of a TApplicationException
// struct at b[pos:], or 0 when it is absent or b is not walkable.
func exceptionType(b []byte, pos int, compact bool) uint32 {
	s := skipper{b: b, compact: compact}
	var last int64
	for pos < len(b) {
		h := b[pos]
		pos++
		if h == tStop {
			return 0
		}
		var id int64
		var t byte
		if compact {
			t = h & 0x0f
			if d := int64(h >> 4); d != 0 {
				id = last + d
			} else {
				v, n, err := uvarint(b[pos:], 3)
				if err != nil {
					return 0
				}
				id, pos = int64(v>>1)^-int64(v&1), pos+n
			}
			last = id
			if id == 2 && t == cI32 {
				v, _, err := uvarint(b[pos:], 5)
				if err != nil {
					return 0
				}
				return uint32(int32(uint32(v>>1) ^ -uint32(v&1)))
			}
			if t == cTrue || t == cFalse {
				continue
			}
		} else {
			t = h
			if len(b)-pos < 2 {
				return 0
			}
			id, pos = int64(int16(binary.BigEndian.Uint16(b[pos:]))), pos+2
			if id == 2 && t == tI32 {
				if len(b)-pos < 4 {
					return 0
				}
				return binary.BigEndian.Uint32(b[pos:])
			}
		}
		var err error
		if pos, err = s.skip(pos, t, 1); err != nil {
			return 0
		}
	}
	return 0
}
