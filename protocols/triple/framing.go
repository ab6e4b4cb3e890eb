package triple

import (
	"encoding/binary"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The proxy's own reply ending a stream it relays in parts
// (docs/triple-streams.md, piece 6: a route's timeout, an upstream
// connection that closed mid-stream). That reply is a Trailers-Only
// response (reply.go); after the response's headers went out, it must be
// trailers instead: no pseudo-header. And when the stream's last message
// went out only in part, trailers would make the client report the
// message cut short (grpc-go: INTERNAL); the stream is then reset
// (RST_STREAM CANCEL). So the send state follows the gRPC framing of what
// it sent of each stream sent in parts.

// framing is where a stream's DATA stands in its gRPC messages: each a
// 5-byte prefix (a flag, a 4-byte length) and a body.
type framing struct {
	hdr  [5]byte
	pre  int // bytes read of the next message's prefix
	body int // bytes of the current message's body still to come
}

// advance reads p, the next DATA of the stream.
func (f *framing) advance(p []byte) {
	for len(p) > 0 {
		if f.body > 0 {
			n := min(f.body, len(p))
			f.body -= n
			p = p[n:]
			continue
		}
		n := copy(f.hdr[f.pre:], p)
		f.pre += n
		p = p[n:]
		if f.pre == len(f.hdr) {
			f.pre, f.body = 0, int(binary.BigEndian.Uint32(f.hdr[1:]))
		}
	}
}

// boundary reports whether the DATA so far ends with a whole message.
func (f *framing) boundary() bool { return f.pre == 0 && f.body == 0 }

// statusIndexed is ":status: 200" as the codec's header blocks begin
// with it (HPACK's static table index 8, indexed), and as no trailers do.
const statusIndexed = 0x80 | 8

// ownReply reports whether the frames, a header block ending their
// stream, begin with :status: a response's first block, as the proxy's
// own replies are (Trailers-Only), not trailers.
func ownReply(frames []byte, h header) bool {
	if h.typ != http2.FrameHeaders || !h.flags.Has(http2.FlagHeadersEndStream) {
		return false
	}
	block := frames[frameHeaderLen : frameHeaderLen+h.length]
	return len(block) > 0 && block[0] == statusIndexed
}

// followLocked follows the framing of out[start:], one message of
// stream, when the stream is sent in parts (it does not end, or an
// earlier part did not), and turns the proxy's own reply that ends such a
// stream into trailers, or into RST_STREAM CANCEL when a message would be
// cut short. It reports whether it sent a reset in place of the reply.
func (s *sendWindow) followLocked(out []byte, start int, stream uint32, ends bool) ([]byte, bool) {
	frames := out[start:]
	f := s.framed[stream]
	if f == nil {
		if ends {
			return out, false // a whole message
		}
		f = &framing{}
		s.framed[stream] = f
	}
	if ends {
		delete(s.framed, stream)
	}
	h := parseHeader(frames)
	if ownReply(frames, h) {
		if !f.boundary() {
			s.forgetLocked(stream) // what is held of it goes nowhere now
			return appendRST(out[:start], stream, http2.ErrCodeCancel), true
		}
		return asTrailers(out, start, stream), false
	}
	for off := 0; off+frameHeaderLen <= len(frames); {
		h := parseHeader(frames[off:])
		if h.typ == http2.FrameData {
			f.advance(frames[off+frameHeaderLen : off+frameHeaderLen+h.length])
		}
		off += frameHeaderLen + h.length
	}
	return out, false
}

// asTrailers rewrites the Trailers-Only block at out[start:] (the codec's
// own, one header block) as trailers: its fields but the pseudo-headers
// and content-type.
func asTrailers(out []byte, start int, stream uint32) []byte {
	h := parseHeader(out[start:])
	fields, err := decodeBlock(nil, out[start+frameHeaderLen:start+frameHeaderLen+h.length], maxFrameSize)
	if err != nil {
		return out // not the codec's own: left as it is
	}
	kept := fields[:0]
	for _, f := range fields {
		if !f.IsPseudo() && f.Name != "content-type" {
			kept = append(kept, hpack.HeaderField{Name: f.Name, Value: f.Value})
		}
	}
	w := getWriter(out[:start])
	w.headers(stream, kept, true)
	return w.put()
}
