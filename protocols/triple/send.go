package triple

import (
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"

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
// decodes, through Released. Senders (Encode, from any goroutine) and the read
// loop share it under mu.
type sendWindow struct {
	mu      sync.Mutex
	conn    int64 // the connection's window
	initial int64 // a new stream's window: the peer's SETTINGS_INITIAL_WINDOW_SIZE
	held    map[uint32]*heldStream
	order   []uint32 // the streams in held, oldest first
	ready   []byte   // frames released, for Released
	// hasReady is len(ready) > 0, for HasReleased without the lock.
	hasReady atomic.Bool
	// open holds the window left of each stream that has sent DATA
	// without ending and has nothing held: a relayed response, sent in
	// parts (relay.go). A stream sent whole in one message is not in it.
	open map[uint32]int64
	// resets are the streams the proxy reset (RST_STREAM) since the read
	// loop last took them (takeResets); hasResets is len(resets) > 0.
	resets    []uint32
	hasResets atomic.Bool
	// framed follows the gRPC messages of the streams sent in parts
	// (framing.go).
	framed map[uint32]*framing
	// requests are a client's streams whose request is relayed and still
	// open (relay_request.go), each with the receive window the client
	// has left on it: a response that ends one is followed by RST_STREAM
	// NO_ERROR, which tells the client to stop sending (RFC 9113, section
	// 8.1) and frees the stream's slot.
	requests map[uint32]int64
	// idx indexes the header blocks sent at once (index.go).
	idx *indexer
}

// heldStream is a stream with frames held back: its window, and its frames
// not sent yet (whole frames, the first DATA one maybe partly sent).
type heldStream struct {
	window int64
	frames []byte
}

func newSendWindow() *sendWindow {
	return &sendWindow{conn: initialWindow, initial: initialWindow, held: make(map[uint32]*heldStream), open: make(map[uint32]int64),
		framed: make(map[uint32]*framing), requests: make(map[uint32]int64), idx: newIndexer()}
}

// Encode is the codec's Encode for this connection
// (protocols.ConnEncoder): the DATA its peer's flow control does not take
// yet is held back, and written later through Released.
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
	total, ends := 0, false
	for off := 0; off+frameHeaderLen <= len(frames); {
		h := parseHeader(frames[off:])
		if h.typ == http2.FrameData {
			total += h.length
		}
		if h.typ != http2.FrameContinuation { // a block's END_STREAM is its HEADERS'
			ends = h.flags.Has(http2.FlagDataEndStream) // HEADERS' is the same bit
		}
		off += frameHeaderLen + h.length
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ready) > 0 {
		// Frames released and not yet taken by Released go first: a relayed
		// stream's later part must not overtake its own earlier frames.
		f := slices.Clone(frames)
		out = append(append(out[:start], s.ready...), f...)
		start += len(s.ready)
		s.ready = s.ready[:0]
		s.hasReady.Store(false)
		frames = out[start:]
	}
	if parseHeader(frames).typ == http2.FrameRSTStream {
		// The proxy resets the stream (an upstream's reset, relayed): it
		// goes out now, and what is held of the stream never will.
		s.forgetLocked(stream)
		return out
	}
	if !ends || len(s.framed) > 0 {
		var reset bool
		if out, reset = s.followLocked(out, start, stream, ends); reset {
			return out
		}
		frames = out[start:]
	}
	window, sent := s.open[stream]
	if !sent {
		window = s.initial
	}
	stop := ends && len(s.requests) > 0 && s.endRequestLocked(stream)
	if _, busy := s.held[stream]; !busy && int64(total) <= min(s.conn, window) {
		s.conn -= int64(total)
		switch {
		case !ends:
			s.open[stream] = window - int64(total)
		case sent:
			delete(s.open, stream)
		}
		out = s.idx.frames(out, start)
		if stop {
			out = appendRST(out, stream, http2.ErrCodeNo)
		}
		return out
	}
	h := s.held[stream]
	if h == nil {
		h = &heldStream{window: window}
		s.held[stream] = h
		s.order = append(s.order, stream)
		delete(s.open, stream)
	}
	h.frames = append(h.frames, frames...)
	if stop {
		h.frames = appendRST(h.frames, stream, http2.ErrCodeNo) // after the response's end
	}
	return s.releaseLocked(out[:start], stream, h)
}

// requestOpen notes that the request of a client's stream is relayed,
// with window bytes of the stream's receive window left.
func (s *sendWindow) requestOpen(stream uint32, window int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[stream] = window
}

// requestEnded notes that the relayed request of a client's stream ended.
func (s *sendWindow) requestEnded(stream uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, stream)
}

// requestReceived takes n bytes of a relayed request's DATA off its
// receive window, and reports whether they fit: the proxy credits a
// relayed request only as its upstream credits the proxy, so a client
// that sends more than its window would have the proxy hold what it
// sent without bound.
func (s *sendWindow) requestReceived(stream uint32, n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.requests[stream]
	if !ok {
		return true // ended or reset meanwhile: its data is dropped
	}
	s.requests[stream] = w - n
	return w >= n
}

// requestCredited adds n bytes to the receive window of a client's
// relayed request (the credit the proxy gives it).
func (s *sendWindow) requestCredited(stream uint32, n uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.requests[stream]; ok {
		s.requests[stream] = w + int64(n)
	}
}

// endRequestLocked reports whether stream's request was still open, as
// the response ends: the proxy then resets the stream after the
// response, and the read loop forgets it (takeResets).
func (s *sendWindow) endRequestLocked(stream uint32) bool {
	if _, ok := s.requests[stream]; !ok {
		return false
	}
	delete(s.requests, stream)
	s.noteResetLocked(stream)
	return true
}

// releaseLocked appends to out the frames of stream the windows let go.
func (s *sendWindow) releaseLocked(out []byte, stream uint32, h *heldStream) []byte {
	ended := false
	for len(h.frames) >= frameHeaderLen {
		f := parseHeader(h.frames)
		n := frameHeaderLen + f.length
		if f.typ != http2.FrameContinuation {
			// HEADERS' END_STREAM is the same bit; an RST_STREAM ends too.
			ended = f.flags.Has(http2.FlagDataEndStream) || f.typ == http2.FrameRSTStream
		}
		if f.typ != http2.FrameData || f.length == 0 {
			out = append(out, h.frames[:n]...)
			h.frames = h.frames[n:]
			continue
		}
		allow := int(min(int64(f.length), h.window, s.conn))
		if allow <= 0 {
			ended = false
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
		ended = false
	}
	if len(h.frames) == 0 {
		delete(s.held, stream)
		s.order = slices.DeleteFunc(s.order, func(id uint32) bool { return id == stream })
		if !ended {
			// A relayed stream's later parts count against what is left.
			s.open[stream] = h.window
		}
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
		s.hasReady.Store(len(s.ready) > 0)
	} else if w, ok := s.open[stream]; ok {
		s.open[stream] = w + int64(inc)
	}
}

// setTableLimit takes the peer's SETTINGS_HEADER_TABLE_SIZE (index.go).
func (s *sendWindow) setTableLimit(v uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idx.setLimit(v)
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
	for id, w := range s.open {
		s.open[id] = w + delta
	}
	s.releaseAllLocked()
}

// resetSent forgets a stream the proxy resets, what is held of it too,
// and notes it for the read loop (takeResets).
func (s *sendWindow) resetSent(stream uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(stream)
}

// forgetLocked is resetSent with s.mu held.
func (s *sendWindow) forgetLocked(stream uint32) {
	s.resetLocked(stream)
	s.noteResetLocked(stream)
}

// noteResetLocked notes a stream the proxy resets for the read loop
// (takeResets).
func (s *sendWindow) noteResetLocked(stream uint32) {
	s.resets = append(s.resets, stream)
	s.hasResets.Store(true)
}

// takeResets returns the streams the proxy reset since the last call and
// forgets them.
func (s *sendWindow) takeResets() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.resets
	s.resets = nil
	s.hasResets.Store(false)
	return out
}

// reset forgets what is held of a stream the peer reset.
func (s *sendWindow) reset(stream uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked(stream)
}

func (s *sendWindow) resetLocked(stream uint32) {
	delete(s.open, stream)
	delete(s.framed, stream)
	delete(s.requests, stream)
	if _, ok := s.held[stream]; ok {
		delete(s.held, stream)
		s.order = slices.DeleteFunc(s.order, func(id uint32) bool { return id == stream })
	}
}

// releaseAllLocked releases what the windows let go, oldest stream first.
func (s *sendWindow) releaseAllLocked() {
	for _, id := range slices.Clone(s.order) {
		if s.conn <= 0 {
			break
		}
		s.ready = s.releaseLocked(s.ready, id, s.held[id])
	}
	s.hasReady.Store(len(s.ready) > 0)
}

// Released appends the frames the peer's flow control let go since the
// last call (protocols.ConnEncoder).
func (d *connDecoder) Released(dst []byte) []byte {
	s := d.send
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = append(dst, s.ready...)
	s.ready = s.ready[:0]
	s.hasReady.Store(false)
	return dst
}

// HasReleased reports whether Released has frames (protocols.ConnEncoder).
func (d *connDecoder) HasReleased() bool { return d.send.hasReady.Load() }

var _ protocols.ConnEncoder = (*connDecoder)(nil)
