package lprpc

import (
	"encoding/binary"

	"github.com/metamesh/metamesh/protocols"
)

// The wire format (README.md): all integers big endian.
//
//	0  uint32  length of the rest of the frame
//	4  uint16  magic 0x4c50 ("LP")
//	6  uint8   version 1
//	7  uint8   flags
//	8  uint64  request ID
//	16 uint16  status (errors; 0 otherwise)
//	18 uint16  header count
//	20 headers: uint16 key length, key, uint16 value length, value
//	   body: the rest
const (
	Magic   = 0x4c50
	Version = 1

	fixedLen = 20 // the bytes before the headers
)

// Flags: the frame's type. Request is 0.
const (
	FlagResponse  = 1 << 0
	FlagOneway    = 1 << 1
	FlagHeartbeat = 1 << 2
	FlagError     = 1 << 3
)

// Statuses of error frames. Applications may use others.
const (
	StatusNoRoute     = 1
	StatusUnavailable = 2 // no healthy upstream
	StatusTimeout     = 3
	StatusOverloaded  = 4 // overloaded or rate limited
	StatusDenied      = 5 // refused by an authorization policy
	StatusAppError    = 100
)

// kindOf maps flags to a Kind; 0 for a combination that is not a frame.
func kindOf(flags byte) protocols.Kind {
	switch flags {
	case 0:
		return protocols.KindRequest
	case FlagOneway:
		return protocols.KindOneway
	case FlagResponse:
		return protocols.KindResponse
	case FlagResponse | FlagError:
		return protocols.KindError
	case FlagHeartbeat:
		return protocols.KindHeartbeat
	case FlagHeartbeat | FlagResponse:
		return protocols.KindHeartbeatReply
	}
	return 0
}

// Frame is an lprpc frame to write, for clients and servers.
type Frame struct {
	Flags   byte
	ID      uint64
	Status  uint16
	Headers []protocols.Header
	Body    []byte
}

// AppendFrame appends f to dst. Keys and values longer than 65535 bytes,
// or more than 65535 headers, are the caller's mistake: they are cut.
func AppendFrame(dst []byte, f Frame) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, Magic>>8, Magic&0xff, Version, f.Flags)
	dst = binary.BigEndian.AppendUint64(dst, f.ID)
	dst = binary.BigEndian.AppendUint16(dst, f.Status)
	n := min(len(f.Headers), 0xffff)
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	for _, h := range f.Headers[:n] {
		dst = appendHeader(dst, h.Key, h.Value)
	}
	dst = append(dst, f.Body...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

func appendHeader(dst []byte, k, v string) []byte {
	k, v = k[:min(len(k), 0xffff)], v[:min(len(v), 0xffff)]
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(k)))
	dst = append(dst, k...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
	return append(dst, v...)
}

// Body returns the body of a frame Decode decoded (aliasing msg.Raw).
func Body(msg *protocols.Message) []byte {
	if b := msg.Marks[markBody]; b >= fixedLen && b <= len(msg.Raw) {
		return msg.Raw[b:]
	}
	return nil
}
