// Package lprpc is a metamesh codec written from the outside: a small
// length-prefixed RPC protocol with a header map (README.md has the wire
// format). It imports only metamesh's public packages and registers itself
// as "lprpc"; a binary that blank-imports it can route lprpc traffic.
package lprpc

import (
	"encoding/binary"
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// Name is the codec name the package registers under.
const Name = "lprpc"

// DefaultMaxFrameBytes bounds a frame unless configured otherwise.
const DefaultMaxFrameBytes = 4 << 20

func init() { protocols.MustRegister(Name, New) }

// Marks the codec records in Message.Marks.
const (
	markBody = 0 // where the body starts in Raw
)

// Codec is the lprpc codec. It holds only configuration: one value serves
// every connection of a listener concurrently.
type Codec struct {
	max int
}

// New builds a codec from its JSON config (an ApplicationProtocol's
// codecConfig): {"maxFrameBytes": N}; nil or {} for the defaults.
func New(config []byte) (protocols.Codec, error) {
	c := &Codec{max: DefaultMaxFrameBytes}
	var conf struct {
		MaxFrameBytes *int `json:"maxFrameBytes"`
	}
	// The host's decoder, so lprpc refuses a near miss the way the
	// built-in codecs do.
	if err := protocols.DecodeConfig(config, &conf); err != nil {
		return nil, fmt.Errorf("lprpc: config: %w", err)
	}
	if m := conf.MaxFrameBytes; m != nil {
		if *m < fixedLen || *m > 1<<31-1 {
			return nil, fmt.Errorf("lprpc: config: maxFrameBytes must be in %d..%d, got %d", fixedLen, 1<<31-1, *m)
		}
		c.max = *m
	}
	return c, nil
}

// Model: responses echo the request ID, so upstream connections are
// shared and IDs rewritten.
func (c *Codec) Model() protocols.Model { return protocols.Multiplexed }

// Decode decodes the first frame in buf. Every header is an attribute,
// in both directions.
func (c *Codec) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	if len(buf) < 4 {
		return 0, nil
	}
	size := binary.BigEndian.Uint32(buf)
	switch {
	case uint64(size)+4 > uint64(c.max):
		return 0, fmt.Errorf("lprpc: frame of %d bytes exceeds limit %d", uint64(size)+4, c.max)
	case size < fixedLen-4:
		return 0, fmt.Errorf("lprpc: frame length %d is shorter than the fixed header", size)
	}
	if len(buf) >= 6 && binary.BigEndian.Uint16(buf[4:]) != Magic {
		return 0, fmt.Errorf("lprpc: bad magic 0x%04x", binary.BigEndian.Uint16(buf[4:]))
	}
	n := int(size) + 4
	if len(buf) < n {
		return 0, nil
	}
	frame := buf[:n:n]
	if frame[6] != Version {
		return 0, fmt.Errorf("lprpc: unsupported version %d", frame[6])
	}
	kind := kindOf(frame[7])
	if kind == 0 {
		return 0, fmt.Errorf("lprpc: invalid flags 0x%02x", frame[7])
	}
	count := int(binary.BigEndian.Uint16(frame[18:]))
	// First pass: bounds. Second: one string for the whole header block,
	// every key and value sliced from it (one allocation per frame).
	end := fixedLen
	for i := range count {
		for range 2 {
			if end+2 > n {
				return 0, fmt.Errorf("lprpc: header %d overruns the frame", i)
			}
			end += 2 + int(binary.BigEndian.Uint16(frame[end:]))
		}
		if end > n {
			return 0, fmt.Errorf("lprpc: header %d overruns the frame", i)
		}
	}
	block := string(frame[fixedLen:end])
	for pos := 0; pos < len(block); {
		kl := int(block[pos])<<8 | int(block[pos+1])
		k := block[pos+2 : pos+2+kl]
		pos += 2 + kl
		vl := int(block[pos])<<8 | int(block[pos+1])
		msg.Headers.Add(k, block[pos+2:pos+2+vl])
		pos += 2 + vl
	}
	msg.Kind = kind
	msg.ID = binary.BigEndian.Uint64(frame[8:])
	msg.Status = uint32(binary.BigEndian.Uint16(frame[16:]))
	msg.Raw = frame
	msg.Marks[markBody] = end
	return n, nil
}

// Encode appends msg's frame with its ID replaced by id and the headers in
// set replaced in place or appended, in any direction. Headers come from
// the frame itself, not msg.Headers, so attributes the proxy adds to a
// Message for routing are not forwarded unless set.
func (c *Codec) Encode(dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) ([]byte, error) {
	raw, body := msg.Raw, msg.Marks[markBody]
	if len(raw) < fixedLen || body < fixedLen || body > len(raw) || binary.BigEndian.Uint16(raw[4:]) != Magic {
		return dst, fmt.Errorf("lprpc: encode: message holds no decoded lprpc frame")
	}
	start := len(dst)
	if len(set) == 0 {
		dst = append(dst, raw...)
		binary.BigEndian.PutUint64(dst[start+8:], id)
		return dst, nil
	}
	dst = append(dst, raw[:fixedLen]...)
	binary.BigEndian.PutUint64(dst[start+8:], id)
	done := make([]bool, len(set)) // small: a route sets a few headers
	count := 0
	for pos := fixedLen; pos < body; {
		kl := int(binary.BigEndian.Uint16(raw[pos:]))
		k := raw[pos+2 : pos+2+kl]
		vAt := pos + 2 + kl
		next := vAt + 2 + int(binary.BigEndian.Uint16(raw[vAt:]))
		if i := indexOf(set, k); i >= 0 {
			if !done[i] {
				dst = appendHeader(dst, set[i].Key, set[i].Value)
				done[i], count = true, count+1
			}
		} else {
			dst = append(dst, raw[pos:next]...)
			count++
		}
		pos = next
	}
	for i, h := range set {
		if !done[i] && indexOf(set, []byte(h.Key)) == i {
			dst = appendHeader(dst, h.Key, h.Value)
			count++
		}
	}
	if count > 0xffff {
		return dst[:start], fmt.Errorf("lprpc: encode: %d headers overflow the count", count)
	}
	binary.BigEndian.PutUint16(dst[start+18:], uint16(count))
	dst = append(dst, raw[body:]...)
	if size := len(dst) - start; size > c.max {
		return dst[:start], fmt.Errorf("lprpc: encode: frame of %d bytes exceeds limit %d", size, c.max)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst, nil
}

// indexOf returns the last index of key in set (the last setting wins), or -1.
func indexOf(set []protocols.Header, key []byte) int {
	for i := len(set) - 1; i >= 0; i-- {
		if set[i].Key == string(key) {
			return i
		}
	}
	return -1
}

// ErrorReply appends an error frame answering req, with the status for
// reason and text as its body.
func (c *Codec) ErrorReply(dst []byte, req *protocols.Message, reason protocols.Reason, text string) []byte {
	return c.StatusReply(dst, req, uint32(reasonStatus(reason)), text)
}

// StatusReply appends an error frame answering req with status (16 bits)
// and text as its body.
func (c *Codec) StatusReply(dst []byte, req *protocols.Message, status uint32, text string) []byte {
	start := len(dst)
	dst = AppendFrame(dst, Frame{Flags: FlagResponse | FlagError, ID: req.ID, Status: uint16(status)})
	dst = append(dst, text...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

func reasonStatus(r protocols.Reason) uint16 {
	switch r {
	case protocols.ReasonNoRoute:
		return StatusNoRoute
	case protocols.ReasonTimeout:
		return StatusTimeout
	case protocols.ReasonOverloaded, protocols.ReasonRateLimited:
		return StatusOverloaded
	case protocols.ReasonDenied:
		return StatusDenied
	}
	return StatusUnavailable // no healthy upstream, and reasons added later
}

// HeartbeatReply appends the answer to the heartbeat req.
func (c *Codec) HeartbeatReply(dst []byte, req *protocols.Message) []byte {
	return AppendFrame(dst, Frame{Flags: FlagHeartbeat | FlagResponse, ID: req.ID})
}

// Classify: an error saying the server is unavailable or overloaded may
// succeed on another host; other errors count against the server.
func (c *Codec) Classify(resp *protocols.Message) protocols.ResponseClass {
	if resp.Kind != protocols.KindError {
		return protocols.ClassOK
	}
	switch resp.Status {
	case StatusUnavailable, StatusOverloaded:
		return protocols.ClassUnavailable
	case StatusAppError, StatusDenied:
		return protocols.ClassOK // the application's (or a policy's) answer, not a failure
	}
	return protocols.ClassServerError
}

var (
	_ protocols.Codec              = (*Codec)(nil)
	_ protocols.StatusReplier      = (*Codec)(nil)
	_ protocols.ResponseClassifier = (*Codec)(nil)
)
