package thrift

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/metamesh/metamesh/protocols"
)

// theader is the parsed preamble and header block of a THeader frame. All
// offsets index the whole frame (length prefix included).
type theader struct {
	protoID   uint64
	zlib      bool
	hdrStart  int // first byte of the header block
	infoStart int // first info section (after protocol id and transforms)
	hdrEnd    int // first byte of the payload
}

// parseTHeader parses frame, a whole THeader frame with its length prefix.
func parseTHeader(frame []byte) (theader, error) {
	var th theader
	if len(frame) < headerPreLen {
		return th, fmt.Errorf("thrift: THeader frame of %d bytes is shorter than its preamble", len(frame))
	}
	words := int(binary.BigEndian.Uint16(frame[12:]))
	th.hdrStart, th.hdrEnd = headerPreLen, headerPreLen+4*words
	if th.hdrEnd > len(frame) {
		return th, fmt.Errorf("thrift: THeader header block of %d bytes overruns the frame", 4*words)
	}
	block := frame[:th.hdrEnd]
	pos := th.hdrStart
	v, n, err := uvarint(block[pos:], 5)
	if err != nil {
		return th, headerErr(err)
	}
	pos += n
	th.protoID = v
	if v != headerProtoBi && v != headerProtoCo {
		return th, fmt.Errorf("thrift: THeader protocol id %d not supported (binary 0, compact 2)", v)
	}
	count, n, err := uvarint(block[pos:], 5)
	if err != nil {
		return th, headerErr(err)
	}
	pos += n
	if count > uint64(len(block)) {
		return th, fmt.Errorf("thrift: THeader transform count %d overruns the header", count)
	}
	for i := uint64(0); i < count; i++ {
		id, n, err := uvarint(block[pos:], 5)
		if err != nil {
			return th, headerErr(err)
		}
		pos += n
		if id != transformZlib {
			return th, fmt.Errorf("thrift: THeader transform %d not supported (only zlib, 1)", id)
		}
		th.zlib = true
	}
	th.infoStart = pos
	it := infoIter{b: block, pos: pos}
	for {
		if _, _, ok, err := it.next(); err != nil {
			return th, err
		} else if !ok {
			break
		}
	}
	return th, nil
}

func headerErr(err error) error {
	if err == errShort {
		return fmt.Errorf("thrift: THeader header block truncated")
	}
	return err
}

// infoIter walks the key/value info sections of a header block. It stops
// at padding (info type 0) or at the first info type it does not know,
// leaving pos there: what follows is kept byte for byte on rebuild.
type infoIter struct {
	b    []byte
	pos  int
	left uint64 // pairs left in the current section
}

// span is a string's position in the frame.
type span struct{ off, n int }

// next returns the next key and value.
func (it *infoIter) next() (k, v span, ok bool, err error) {
	for it.left == 0 {
		if it.pos >= len(it.b) || it.b[it.pos] != infoKeyValue {
			return k, v, false, nil
		}
		c, n, err := uvarint(it.b[it.pos+1:], 5)
		if err != nil {
			return k, v, false, headerErr(err)
		}
		if c > uint64(len(it.b)) {
			return k, v, false, fmt.Errorf("thrift: THeader info count %d overruns the header", c)
		}
		it.pos += 1 + n
		it.left = c
	}
	if k, err = it.str(); err != nil {
		return k, v, false, err
	}
	if v, err = it.str(); err != nil {
		return k, v, false, err
	}
	it.left--
	return k, v, true, nil
}

func (it *infoIter) str() (span, error) {
	l, n, err := uvarint(it.b[it.pos:], 5)
	if err != nil {
		return span{}, headerErr(err)
	}
	if l > uint64(len(it.b)-it.pos-n) {
		return span{}, fmt.Errorf("thrift: THeader string of %d bytes overruns the header", l)
	}
	s := span{it.pos + n, int(l)}
	it.pos += n + int(l)
	return s, nil
}

// rest is where the known info sections end: an unknown section or padding.
func (it *infoIter) rest() int { return it.pos }

// appendHeaderBlock appends frame's header block with set applied: the
// protocol id and transforms as they were, one key/value section holding
// the old pairs (replaced values in place) and then the new keys, any
// unknown sections byte for byte, and padding to a 4-byte boundary.
func appendHeaderBlock(dst, frame []byte, th theader, set []protocols.Header) ([]byte, error) {
	start := len(dst)
	dst = append(dst, frame[th.hdrStart:th.infoStart]...)
	block := frame[:th.hdrEnd]

	// Count the pairs first: the section header carries the count.
	it := infoIter{b: block, pos: th.infoStart}
	pairs := 0
	for {
		_, _, ok, err := it.next()
		if err != nil {
			return dst[:start], err
		}
		if !ok {
			break
		}
		pairs++
	}
	rest := it.rest()
	added := 0
	for i, h := range set {
		if !hasKey(block, th.infoStart, h.Key) && !dupBefore(set, i) {
			added++
		}
	}
	if pairs+added > 0 {
		dst = append(dst, infoKeyValue)
		dst = appendUvarint(dst, uint64(pairs+added))
		it = infoIter{b: block, pos: th.infoStart}
		for {
			k, v, ok, _ := it.next()
			if !ok {
				break
			}
			key := block[k.off : k.off+k.n]
			dst = appendStr(dst, key)
			if val, found := lastValue(set, key); found {
				dst = appendUvarint(dst, uint64(len(val)))
				dst = append(dst, val...)
			} else {
				dst = appendStr(dst, block[v.off:v.off+v.n])
			}
		}
		for i, h := range set {
			if !hasKey(block, th.infoStart, h.Key) && !dupBefore(set, i) {
				v, _ := lastValue(set, []byte(h.Key))
				dst = appendUvarint(dst, uint64(len(h.Key)))
				dst = append(dst, h.Key...)
				dst = appendUvarint(dst, uint64(len(v)))
				dst = append(dst, v...)
			}
		}
	}
	// Unknown sections are kept; padding is not (it is re-added).
	if rest < len(block) && block[rest] != 0 {
		dst = append(dst, block[rest:]...)
	}
	for (len(dst)-start)%4 != 0 {
		dst = append(dst, 0)
	}
	if (len(dst)-start)/4 > math.MaxUint16 {
		return dst[:start], fmt.Errorf("thrift: encode: THeader header block of %d bytes is too large", len(dst)-start)
	}
	return dst, nil
}

func appendStr(dst, s []byte) []byte {
	dst = appendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// hasKey reports whether the header block's key/value sections hold key.
func hasKey(block []byte, pos int, key string) bool {
	it := infoIter{b: block, pos: pos}
	for {
		k, _, ok, _ := it.next()
		if !ok {
			return false
		}
		if string(block[k.off:k.off+k.n]) == key {
			return true
		}
	}
}

// dupBefore reports whether set[i]'s key appears earlier in set.
func dupBefore(set []protocols.Header, i int) bool {
	for _, h := range set[:i] {
		if h.Key == set[i].Key {
			return true
		}
	}
	return false
}

// lastValue returns the value set gives key (the last one wins).
func lastValue(set []protocols.Header, key []byte) (string, bool) {
	for i := len(set) - 1; i >= 0; i-- {
		if set[i].Key == string(key) {
			return set[i].Value, true
		}
	}
	return "", false
}
