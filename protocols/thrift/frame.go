package thrift

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Transports and protocols, as recorded in Marks[markLayout].
const (
	transFramed   = 1
	transUnframed = 2
	transHeader   = 3

	protoStrict  = 1 // binary, 0x8001 version word first
	protoLax     = 2 // binary, old style: the name first
	protoCompact = 3

	layoutZlib = 1 << 8 // THeader payload is zlib-compressed
)

// Marks recorded by Decode for Encode and ErrorReply.
const (
	markLayout   = 0 // transport | proto<<4 | layoutZlib
	markPayload  = 1 // offset of the message in Raw (the inflated payload when zlib)
	markSeq      = 2 // offset of the message seqid (in the payload when zlib)
	markSeqLen   = 3 // its length: 4 (binary) or the varint's length (compact)
	markHdrStart = 4 // THeader: offset of the header block (after the 14-byte preamble)
	markHdrEnd   = 5 // THeader: offset of the payload
)

// Message types on the wire.
const (
	typeCall      = 1
	typeReply     = 2
	typeException = 3
	typeOneway    = 4
)

const (
	versionMask   = 0xffff0000
	version1      = 0x80010000
	compactID     = 0x82
	compactVer    = 1
	headerMagic   = 0x0fff
	headerPreLen  = 14 // length, magic, flags, seqid, header words
	headerProtoBi = 0
	headerProtoCo = 2
	transformZlib = 1
	infoKeyValue  = 1
)

// DefaultMaxFrameBytes bounds a frame unless the config says otherwise.
const DefaultMaxFrameBytes = 16 << 20

// errShort means the bytes end before the structure does: wait for more.
var errShort = errors.New("thrift: short")

// msgHeader is the parsed start of a message: everything up to the
// arguments struct, as offsets into the bytes it was parsed from.
type msgHeader struct {
	proto   int
	typ     byte
	seq     int32
	seqOff  int
	seqLen  int
	nameOff int
	nameLen int
	end     int // offset of the body struct
}

// detectProto classifies a message by its first bytes.
func detectProto(b []byte) (int, error) {
	if len(b) < 2 {
		return 0, errShort
	}
	switch {
	case b[0] == 0x80:
		if b[1] != 0x01 {
			return 0, fmt.Errorf("thrift: bad binary version 0x%02x%02x", b[0], b[1])
		}
		return protoStrict, nil
	case b[0] == compactID:
		if b[1]&0x1f != compactVer {
			return 0, fmt.Errorf("thrift: bad compact version %d", b[1]&0x1f)
		}
		return protoCompact, nil
	case b[0] == 0:
		// An old-style binary message starts with the name's length;
		// names are far shorter than 16 MiB.
		return protoLax, nil
	}
	return 0, fmt.Errorf("thrift: unknown protocol (first byte 0x%02x)", b[0])
}

// parseMessage parses the message header in b, whose protocol is proto.
// Names longer than max are an error.
func parseMessage(b []byte, proto int, max int) (msgHeader, error) {
	h := msgHeader{proto: proto}
	switch proto {
	case protoStrict:
		if len(b) < 8 {
			return h, errShort
		}
		v := binary.BigEndian.Uint32(b)
		if v&versionMask != version1 || v&0xff00 != 0 {
			return h, fmt.Errorf("thrift: bad binary version word 0x%08x", v)
		}
		h.typ = byte(v)
		n := int64(int32(binary.BigEndian.Uint32(b[4:])))
		if n < 0 || n > int64(max) {
			return h, fmt.Errorf("thrift: method name length %d out of range", n)
		}
		h.nameOff, h.nameLen = 8, int(n)
		h.seqOff, h.seqLen = 8+int(n), 4
		h.end = h.seqOff + 4
	case protoLax:
		if len(b) < 4 {
			return h, errShort
		}
		n := int64(int32(binary.BigEndian.Uint32(b)))
		if n < 0 || n > int64(max) {
			return h, fmt.Errorf("thrift: method name length %d out of range", n)
		}
		h.nameOff, h.nameLen = 4, int(n)
		if len(b) < 5+int(n) {
			return h, errShort
		}
		h.typ = b[4+n]
		h.seqOff, h.seqLen = 5+int(n), 4
		h.end = h.seqOff + 4
	case protoCompact:
		if len(b) < 3 {
			return h, errShort
		}
		if b[0] != compactID || b[1]&0x1f != compactVer {
			return h, fmt.Errorf("thrift: bad compact header 0x%02x%02x", b[0], b[1])
		}
		h.typ = b[1] >> 5
		v, n, err := uvarint(b[2:], 5)
		if err != nil {
			return h, err
		}
		if v > 0xffffffff {
			return h, fmt.Errorf("thrift: compact seqid overflows 32 bits")
		}
		h.seq = int32(uint32(v))
		h.seqOff, h.seqLen = 2, n
		l, m, err := uvarint(b[2+n:], 5)
		if err != nil {
			return h, err
		}
		if l > uint64(max) {
			return h, fmt.Errorf("thrift: method name length %d out of range", l)
		}
		h.nameOff, h.nameLen = 2+n+m, int(l)
		h.end = h.nameOff + h.nameLen
	default:
		return h, fmt.Errorf("thrift: unknown protocol %d", proto)
	}
	if h.typ < typeCall || h.typ > typeOneway {
		return h, fmt.Errorf("thrift: bad message type %d", h.typ)
	}
	if len(b) < h.end {
		return h, errShort
	}
	if proto != protoCompact {
		h.seq = int32(binary.BigEndian.Uint32(b[h.seqOff:]))
	}
	return h, nil
}

// uvarint reads an unsigned LEB128 varint of at most maxBytes bytes.
func uvarint(b []byte, maxBytes int) (uint64, int, error) {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		if i >= len(b) {
			return 0, 0, errShort
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, fmt.Errorf("thrift: varint longer than %d bytes", maxBytes)
}

// appendUvarint appends v as an unsigned LEB128 varint.
func appendUvarint(dst []byte, v uint64) []byte {
	return binary.AppendUvarint(dst, v)
}

// typeName is the message_type attribute of a request type.
func typeName(t byte) string {
	if t == typeOneway {
		return "oneway"
	}
	return "call"
}
