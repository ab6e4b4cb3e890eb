package dubbo

import "encoding/binary"

// The 16-byte Dubbo header:
//
//	0..2   magic 0xdabb
//	2      flags: request, two-way, event, and the serialization id
//	3      status (responses)
//	4..12  request id, int64 big-endian
//	12..16 body length, int32 big-endian
const (
	headerLen = 16

	magicHi = 0xda
	magicLo = 0xbb

	flagRequest = 0x80
	flagTwoWay  = 0x40
	flagEvent   = 0x20
	serialMask  = 0x1f

	// serialHessian2 is the only serialization whose request bodies the
	// codec walks (to route, it must read the attachments).
	serialHessian2 = 2

	// DefaultMaxBodyBytes is Dubbo's own default payload limit (8 MiB),
	// applied to the body length.
	DefaultMaxBodyBytes = 8 << 20
)

// Response status bytes (org.apache.dubbo.remoting.exchange.Response).
const (
	StatusOK                  byte = 20
	StatusClientTimeout       byte = 30
	StatusServerTimeout       byte = 31
	StatusBadRequest          byte = 40
	StatusBadResponse         byte = 50
	StatusServiceNotFound     byte = 60
	StatusServiceError        byte = 70
	StatusServerError         byte = 80
	StatusClientError         byte = 90
	StatusThreadpoolExhausted byte = 100
)

// DefaultDubboVersion is the protocol version AppendRequest writes when
// Request.DubboVersion is empty (what dubbo-go and Java Dubbo send).
const DefaultDubboVersion = "2.0.2"

// The first value of an OK response body (DubboCodec.RESPONSE_*): what
// follows it, and whether an attachments map closes the body.
const (
	respWithException                = 0
	respValue                        = 1
	respNullValue                    = 2
	respWithExceptionWithAttachments = 3
	respValueWithAttachments         = 4
	respNullValueWithAttachments     = 5
)

// Marks are positions in Message.Raw that Decode records for Encode.
const (
	// markAttStart is where the attachments value starts: a map tag, a
	// null, or the end of the body when a request carries none.
	markAttStart = iota
	// markAttEntries is where the map entries start (after 'H', or after
	// 'M' and its type). Equal to markAttStart when there is no map.
	markAttEntries
	// markAttEnd is the offset just past the attachments value ('Z').
	markAttEnd
)

// header is the decoded fixed part of a frame.
type header struct {
	flags   byte
	status  byte
	id      uint64
	bodyLen int64
}

func parseHeader(b []byte) header {
	return header{
		flags:   b[2],
		status:  b[3],
		id:      binary.BigEndian.Uint64(b[4:12]),
		bodyLen: int64(int32(binary.BigEndian.Uint32(b[12:16]))),
	}
}

func (h header) isRequest() bool { return h.flags&flagRequest != 0 }
func (h header) isTwoWay() bool  { return h.flags&flagTwoWay != 0 }
func (h header) isEvent() bool   { return h.flags&flagEvent != 0 }
func (h header) serial() byte    { return h.flags & serialMask }

// appendHeader appends a header whose body length is patched later by
// setBodyLen.
func appendHeader(dst []byte, flags, status byte, id uint64) []byte {
	dst = append(dst, magicHi, magicLo, flags, status)
	dst = binary.BigEndian.AppendUint64(dst, id)
	return append(dst, 0, 0, 0, 0)
}

// setBodyLen writes the body length of the frame starting at start in b,
// whose end is len(b).
func setBodyLen(b []byte, start int) {
	binary.BigEndian.PutUint32(b[start+12:start+16], uint32(len(b)-start-headerLen))
}
