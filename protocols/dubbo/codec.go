// Package dubbo is the codec for the Dubbo protocol (dubbo2 framing, hessian2
// bodies). It reads routing attributes from request bodies without
// deserializing arguments, and patches request IDs and attachments when
// forwarding. See README.md for the attributes and limits.
package dubbo

import (
	"encoding/binary"
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// Name is the protocol name the codec registers under.
const Name = "dubbo"

func init() { protocols.MustRegister(Name, New) }

// Codec is the Dubbo codec. It holds only its configuration, so one value
// serves any number of connections concurrently.
type Codec struct {
	maxBody int64
}

// config is the JSON configuration New accepts.
type config struct {
	// MaxFrameBytes bounds the body length of a frame (the header's
	// length field), like Dubbo's payload limit.
	MaxFrameBytes *int64 `json:"maxFrameBytes"`
}

// New builds a codec from its JSON configuration (nil or empty for the
// defaults): {"maxFrameBytes": N}, default 8 MiB.
func New(cfg []byte) (protocols.Codec, error) {
	c := &Codec{maxBody: DefaultMaxBodyBytes}
	var conf config
	if err := protocols.DecodeConfig(cfg, &conf); err != nil {
		return nil, fmt.Errorf("dubbo: config: %w", err)
	}
	if conf.MaxFrameBytes != nil {
		if *conf.MaxFrameBytes <= 0 {
			return nil, fmt.Errorf("dubbo: config: maxFrameBytes must be positive, got %d", *conf.MaxFrameBytes)
		}
		c.maxBody = *conf.MaxFrameBytes
	}
	return c, nil
}

// Model reports that Dubbo pairs responses with requests by ID.
func (c *Codec) Model() protocols.Model { return protocols.Multiplexed }

// Decode decodes the first frame in buf. Request bodies must be hessian2:
// their service, method and attachments are routing attributes. Other
// frames are classified from the header alone.
func (c *Codec) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	if (len(buf) > 0 && buf[0] != magicHi) || (len(buf) > 1 && buf[1] != magicLo) {
		return 0, fmt.Errorf("dubbo: bad magic 0x%02x%02x", buf[0], buf[min(1, len(buf)-1)])
	}
	if len(buf) < headerLen {
		return 0, nil
	}
	h := parseHeader(buf)
	switch {
	case h.bodyLen < 0:
		return 0, fmt.Errorf("dubbo: negative body length %d", h.bodyLen)
	case h.bodyLen > c.maxBody:
		return 0, fmt.Errorf("dubbo: body length %d exceeds limit %d", h.bodyLen, c.maxBody)
	case h.bodyLen == 0:
		// Every Dubbo body holds at least one value (a heartbeat's null).
		return 0, fmt.Errorf("dubbo: empty body")
	}
	n := headerLen + int(h.bodyLen)
	if len(buf) < n {
		return 0, nil
	}
	frame := buf[:n:n]
	switch {
	case h.isRequest() && h.isEvent():
		msg.Kind = protocols.KindHeartbeat
	case h.isEvent():
		msg.Kind = protocols.KindHeartbeatReply
	case h.isRequest():
		if h.serial() != serialHessian2 {
			return 0, fmt.Errorf("dubbo: request serialization id %d is not supported (only hessian2, id 2)", h.serial())
		}
		if err := decodeRequest(frame, msg); err != nil {
			msg.Reset()
			return 0, err
		}
		msg.Kind = protocols.KindOneway
		if h.isTwoWay() {
			msg.Kind = protocols.KindRequest
		}
	case h.status == StatusOK:
		msg.Kind = protocols.KindResponse
	default:
		msg.Kind = protocols.KindError
	}
	msg.ID = h.id
	msg.Status = uint32(h.status)
	msg.Raw = frame
	return n, nil
}

// Encode appends msg's frame with its request ID replaced by id. For a
// request or an OK response, set adds or replaces attachments (a response
// without attachments gets a map); events and error responses ignore set.
func (c *Codec) Encode(dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) ([]byte, error) {
	raw := msg.Raw
	if len(raw) < headerLen || raw[0] != magicHi || raw[1] != magicLo {
		return dst, fmt.Errorf("dubbo: encode: message holds no dubbo frame")
	}
	h := parseHeader(raw)
	if len(set) == 0 || h.isEvent() || (!h.isRequest() && h.status != StatusOK) {
		start := len(dst)
		dst = append(dst, raw...)
		binary.BigEndian.PutUint64(dst[start+4:], id)
		return dst, nil
	}
	if h.serial() != serialHessian2 {
		return dst, fmt.Errorf("dubbo: encode: cannot set attachments in serialization id %d (only hessian2, id 2)", h.serial())
	}
	start := len(dst)
	var err error
	if h.isRequest() {
		dst, err = encodeRequest(dst, msg, set)
	} else {
		dst, err = encodeResponse(dst, raw, set)
	}
	if err != nil {
		return dst[:start], err
	}
	if body := len(dst) - start - headerLen; body > 1<<31-1 {
		return dst[:start], fmt.Errorf("dubbo: encode: body length %d overflows the header", body)
	}
	binary.BigEndian.PutUint64(dst[start+4:], id)
	setBodyLen(dst, start)
	return dst, nil
}

// ErrorReply appends a response to req with the status for reason and
// text as the error message.
func (c *Codec) ErrorReply(dst []byte, req *protocols.Message, reason protocols.Reason, text string) []byte {
	return AppendResponse(dst, req.ID, reasonStatus(reason), text)
}

// StatusReply appends a response to req with the given status (one byte;
// for example 80 SERVER_ERROR) and text as the error message.
func (c *Codec) StatusReply(dst []byte, req *protocols.Message, status uint32, text string) []byte {
	return AppendResponse(dst, req.ID, byte(status), text)
}

func reasonStatus(reason protocols.Reason) byte {
	switch reason {
	case protocols.ReasonNoRoute:
		return StatusServiceNotFound
	case protocols.ReasonTimeout:
		return StatusServerTimeout
	case protocols.ReasonOverloaded, protocols.ReasonRateLimited:
		return StatusThreadpoolExhausted
	case protocols.ReasonDenied:
		// Dubbo has no "forbidden" status; 40 says the request, not the
		// server, is at fault, and clients show the message.
		return StatusBadRequest
	}
	return StatusServerError // ReasonNoHealthyUpstream and anything new
}

// Classify tells a response's class by its status: 100 (thread pool
// exhausted) is unavailable, the one Dubbo status that means "try another
// provider"; 31 (server timeout), 50 (bad response), 70 (service error) and
// 80 (server error) are server errors; the rest (20, and the client-side
// 30, 40, 60, 90) say nothing against the server.
func (c *Codec) Classify(resp *protocols.Message) protocols.ResponseClass {
	if resp.Kind != protocols.KindError {
		return protocols.ClassOK
	}
	switch byte(resp.Status) {
	case StatusThreadpoolExhausted:
		return protocols.ClassUnavailable
	case StatusServerTimeout, StatusBadResponse, StatusServiceError, StatusServerError:
		return protocols.ClassServerError
	}
	return protocols.ClassOK
}

// HeartbeatReply appends the event response to the heartbeat req.
func (c *Codec) HeartbeatReply(dst []byte, req *protocols.Message) []byte {
	start := len(dst)
	dst = appendHeader(dst, flagEvent|serialHessian2, StatusOK, req.ID)
	dst = append(dst, 'N')
	setBodyLen(dst, start)
	return dst
}

var _ protocols.Codec = (*Codec)(nil)
