package thrift

import (
	"encoding/binary"

	"github.com/metamesh/metamesh/protocols"
)

// TApplicationException types used in local replies (docs/reference.md,
// Error replies).
const (
	ExcUnknown       = 0
	ExcUnknownMethod = 1
	ExcInternalError = 6
)

// ErrorReply appends a TApplicationException reply to req in its transport
// and protocol, with req's method name (without a multiplex prefix, as a
// multiplexing server answers) and seqid. Binary replies are strict even to
// an old-style call: every binary reader takes them, and they can't be
// mistaken for a frame length. A request not decoded by this codec gets a
// framed strict binary reply.
func (c *Codec) ErrorReply(dst []byte, req *protocols.Message, reason protocols.Reason, text string) []byte {
	return c.StatusReply(dst, req, uint32(reasonType(reason)), text)
}

// StatusReply appends a TApplicationException of type status (for
// example 6 INTERNAL_ERROR) answering req, in req's transport and protocol.
func (c *Codec) StatusReply(dst []byte, req *protocols.Message, status uint32, text string) []byte {
	trans, proto := req.Marks[markLayout]&0xf, req.Marks[markLayout]>>4&0xf
	if trans < transFramed || trans > transHeader || proto < protoStrict || proto > protoCompact {
		trans, proto = transFramed, protoStrict
	}
	if proto == protoLax {
		proto = protoStrict
	}
	method, _ := req.Headers.Get("method")
	return appendException(dst, trans, proto, method, uint32(req.ID), int32(status), text)
}

func reasonType(reason protocols.Reason) int32 {
	switch reason {
	case protocols.ReasonNoRoute:
		return ExcUnknownMethod
	case protocols.ReasonDenied:
		// No TApplicationException type says "forbidden"; the message
		// names the policy.
		return ExcUnknown
	}
	return ExcInternalError
}

// appendException appends an EXCEPTION message (compact, else strict
// binary) carrying a TApplicationException {1: message, 2: type}.
func appendException(dst []byte, trans, proto int, method string, seq uint32, typ int32, text string) []byte {
	start := len(dst)
	switch trans {
	case transFramed:
		dst = append(dst, 0, 0, 0, 0)
	case transHeader:
		id := byte(headerProtoBi)
		if proto == protoCompact {
			id = headerProtoCo
		}
		// length, magic, flags, seqid, one header word: protocol id,
		// no transforms, padding.
		dst = append(dst, 0, 0, 0, 0, 0x0f, 0xff, 0, 0)
		dst = binary.BigEndian.AppendUint32(dst, seq)
		dst = append(dst, 0, 1, id, 0, 0, 0)
	}
	switch proto {
	case protoCompact:
		dst = append(dst, compactID, typeException<<5|compactVer)
		dst = appendUvarint(dst, uint64(seq))
		dst = appendUvarint(dst, uint64(len(method)))
		dst = append(dst, method...)
		dst = append(dst, 1<<4|cBinary)
		dst = appendUvarint(dst, uint64(len(text)))
		dst = append(dst, text...)
		dst = append(dst, 1<<4|cI32)
		dst = appendUvarint(dst, uint64(uint32(typ<<1)^uint32(typ>>31)))
	default:
		dst = binary.BigEndian.AppendUint32(dst, version1|typeException)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(method)))
		dst = append(dst, method...)
		dst = binary.BigEndian.AppendUint32(dst, seq)
		dst = append(dst, tString, 0, 1)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(text)))
		dst = append(dst, text...)
		dst = append(dst, tI32, 0, 2)
		dst = binary.BigEndian.AppendUint32(dst, uint32(typ))
	}
	dst = append(dst, tStop)
	if trans != transUnframed {
		binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	}
	return dst
}
