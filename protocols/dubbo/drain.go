package dubbo

import "github.com/metamesh/metamesh/protocols"

// readonlyEvent is the data of the event Dubbo servers send when they
// shut down (READONLY_EVENT): a client marks the connection read-only
// and sends its next requests to other providers.
const readonlyEvent = "R"

// DrainFrame appends the readonly event: a oneway event request whose
// body is the string "R", as Dubbo's own servers send it before closing.
// Clients that don't know it answer it as a heartbeat.
func (c *Codec) DrainFrame(dst []byte) []byte {
	start := len(dst)
	dst = appendHeader(dst, flagRequest|flagEvent|serialHessian2, 0, 0)
	dst = putString(dst, readonlyEvent)
	setBodyLen(dst, start)
	return dst
}

// RejectReply answers a two-way request that Decode refused (its body
// over maxFrameBytes, or not decodable) with a BAD_REQUEST response whose
// message is err, so the client learns why its connection closes. Frames
// without a whole header, events, oneway requests and responses get none.
func (c *Codec) RejectReply(dst, buf []byte, err error) []byte {
	if len(buf) < headerLen || buf[0] != magicHi || buf[1] != magicLo {
		return dst
	}
	h := parseHeader(buf)
	if !h.isRequest() || !h.isTwoWay() || h.isEvent() {
		return dst
	}
	return AppendResponse(dst, h.id, StatusBadRequest, "metamesh: "+err.Error())
}

var (
	_ protocols.Drainer  = (*Codec)(nil)
	_ protocols.Rejecter = (*Codec)(nil)
)
