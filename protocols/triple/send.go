package triple

import (
	"encoding/binary"
	"slices"
	"sync"

	"golang.org/x/net/http2"

	"github.com/metamesh/metamesh/protocols"
)

// sendWindow is the proxy's side of its peer's flow control on one
// connection: the DATA the proxy sends on a stream may not exceed the
// peer's window for that stream nor its window for the connection
// (RFC 9113, section 5.2). A message whose DATA fits goes out whole, as it
// comes (the common case: nothing is tracked for it); the part of one that
// does not is held, with the stream's frames after it, and released by
// the WINDOW_UPDATE and SETTINGS frames the connection's read loop
// decodes, through Owed. Senders (Encode, from any goroutine) and the read
// loop share it under mu.
type sendWindow struct {
	mu      sync.Mutex
	conn    int64 // the connection's window
	initial int64 // a new stream's window: the peer's SETTINGS_INITIAL_WINDOW_SIZE
	held    map[uint32]*heldStream
	order   []uint32 // the streams in held, oldest first
	ready   []byte   // frames released, for Owed
}

// heldStream is a stream with frames held back: its window, and its frames
// not sent yet (whole frames, the first DATA one maybe partly sent).
type heldStream struct {
	window int64
	frames []byte
}

func newSendWindow() *sendWindow {
	return &sendWindow{conn: initialWindow, initial: initialWindow, held: make(map[uint32]*heldStream)}
}

// Encode is the codec's Encode for this connection
// (protocols.ConnEncoder): the DATA its peer's flow control does not take
// yet is held back, and written later through Owed.
func (d *connDecoder) Encode(dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) ([]byte, error) {
	start := len(dst)
	dst, err := d.c.Encode(dst, msg, id, set)
	if err != nil || msg.Kind == protocols.KindHeartbeat || msg.Kind == protocols.KindHeartbeatReply {
		return dst, err
	}
	return d.send.admit(dst, start), nil
}

// admit sends the frames of one stream at out[start:] as far as the
// windows allow, holding back the rest.
func (s *sendWindow) admit(out []byte, start int) []byte {
	frames := out[start:]
	if len(frames) < frameHeaderLen {
		return out
	}
	stream := parseHeader(frames).stream
	total := 0
	for off := 0; off+frameHeaderLen <= len(frames); {
		h := parseHeader(frames[off:])
		if h.typ == http2.FrameData {
			total += h.length
		}
		off += frameHeaderLen + h.length
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.held[stream]; !busy && int64(total) <= min(s.conn, s.initial) {
		s.conn -= int64(total)
		return out
	}
	h := s.held[stream]
	if h == nil {
		h = &heldStream{window: s.initial}
		s.held[stream] = h
		s.order = append(s.order, stream)
	}
	h.frames = append(h.frames, frames...)
	return s.releaseLocked(out[:start], stream, h)
}

// releaseLocked appends to out the frames of stream the windows let go.
func (s *sendWindow) releaseLocked(out []byte, stream uint32, h *heldStream) []byte {
	for len(h.frames) >= frameHeaderLen {
		f := parseHeader(h.frames)
		n := frameHeaderLen + f.length
		if f.typ != http2.FrameData || f.length == 0 {
			out = append(out, h.frames[:n]...)
			h.frames = h.frames[n:]
			continue
		}
		allow := int(min(int64(f.length), h.window, s.conn))
		if allow <= 0 {
			break
		}
		h.window -= int64(allow)
		s.conn -= int64(allow)
		if allow == f.length {
			out = append(out, h.frames[:n]...)
			h.frames = h.frames[n:]
			continue
		}
		// Part of the frame: its first allow bytes now, without
		// END_STREAM; the rest stays, as a frame whose header takes the
		// place of the last bytes sent.
		out = appendDataHeader(out, allow, 0, stream)
		out = append(out, h.frames[frameHeaderLen:frameHeaderLen+allow]...)
		h.frames = h.frames[allow:]
		putDataHeader(h.frames, f.length-allow, f.flags, stream)
	}
	if len(h.frames) == 0 {
		delete(s.held, stream)
		s.order = slices.DeleteFunc(s.order, func(id uint32) bool { return id == stream })
	}
	return out
}

// appendDataHeader appends a DATA frame's header.
func appendDataHeader(out []byte, length int, flags http2.Flags, stream uint32) []byte {
	var b [frameHeaderLen]byte
	putDataHeader(b[:], length, flags, stream)
	return append(out, b[:]...)
}

func putDataHeader(b []byte, length int, flags http2.Flags, stream uint32) {
	b[0], b[1], b[2] = byte(length>>16), byte(length>>8), byte(length)
	b[3], b[4] = byte(http2.FrameData), byte(flags)
	binary.BigEndian.PutUint32(b[5:], stream)
}

// windowUpdate takes the peer's WINDOW_UPDATE: more room on the
// connection (stream 0) or on one stream.
func (s *sendWindow) windowUpdate(stream, inc uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stream == 0 {
		s.conn += int64(inc)
		s.releaseAllLocked()
		return
	}
	if h := s.held[stream]; h != nil {
		h.window += int64(inc)
		s.ready = s.releaseLocked(s.ready, stream, h)
	}
}

// setInitial takes the peer's SETTINGS_INITIAL_WINDOW_SIZE: every open
// stream's window moves by the change (RFC 9113, section 6.9.2).
func (s *sendWindow) setInitial(v uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delta := int64(v) - s.initial
	s.initial = int64(v)
	for _, h := range s.held {
		h.window += delta
	}
	s.releaseAllLocked()
}

// reset forgets what is held of a stream the peer reset.
func (s *sendWindow) reset(stream uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.held[stream]; ok {
		delete(s.held, stream)
		s.order = slices.DeleteFunc(s.order, func(id uint32) bool { return id == stream })
	}
}

// releaseAllLocked releases what the windows let go, oldest stream first.
func (s *sendWindow) releaseAllLocked() {
	for _, id := range slices.Clone(s.order) {
		if s.conn <= 0 {
			return
		}
		s.ready = s.releaseLocked(s.ready, id, s.held[id])
	}
}

// takeReady appends the frames released since the last call to dst.
func (s *sendWindow) takeReady(dst []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = append(dst, s.ready...)
	s.ready = s.ready[:0]
	return dst
}

var _ protocols.ConnEncoder = (*connDecoder)(nil)
