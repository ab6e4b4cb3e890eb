package triple

import (
	"fmt"
	"io"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// connDecoder reads one HTTP/2 connection: a client's (server) or the
// proxy's to an upstream. It reads the wire's frames with the x/net/http2
// Framer, header blocks with the connection's HPACK decoder, keeps each
// open stream's headers and data until the stream ends, and then writes
// the whole call as one message in the codec's own form (codec.go,
// Decode). What the connection owes its peer (the server's SETTINGS, ACKs,
// flow-control credit for the DATA frames read) collects in owed.
type connDecoder struct {
	c       *Codec
	server  bool
	preface bool // the client preface is still to come
	src     source
	owed    sink
	fr      *http2.Framer
	streams map[uint32]*stream
	out     []byte               // the last message, in the codec's own form
	limits  protocols.PeerLimits // an upstream's SETTINGS and GOAWAY
	send    *sendWindow          // the peer's flow control of what the proxy sends (send.go)
	// credits: the stream WINDOW_UPDATEs a client sent since Credits
	// last took them (relay.go).
	credits []protocols.StreamCredit
	// memo: the last first header block and trailers written (frame.go).
	memo [2]blockMemo
	// unacked: DATA bytes read that the connection's window has not
	// been credited with yet (creditConn).
	unacked uint32
	// ripe: streams that got a whole message this read and may be
	// promoted (relay.go, Promote).
	ripe []uint32
	// grace: how long a client's request that holds a whole message
	// waits for its end before it is promoted (WaitToPromote); now is
	// the clock (tests set it).
	grace time.Duration
	now   func() time.Time
	// spare: streams completed, for new ones to reuse (their data
	// buffers too, when small).
	spare []*stream
	// hdec is the HPACK decoder of what the peer sends; block reads one
	// header block into fields (header.go).
	hdec   *hpack.Decoder
	block  blockRead
	recall recaller // recall.go
}

// Bounds of what a connection decoder keeps for reuse.
const (
	maxSpare     = 16
	maxSpareData = 16 << 10
	// maxSpareFields bounds the fields a spare stream keeps room for,
	// and the decoder's own slice of the block being read.
	maxSpareFields = 64
)

// stream is what arrived of one open stream.
type stream struct {
	fields, trailers []hpack.HeaderField
	hasTrailers      bool
	data             []byte
	read             int  // the DATA frames' bytes read, padding included
	relay            bool // relayed in parts (relay.go, relay_request.go)
	// whole is when its first message was whole, while it waits to be
	// promoted (grace).
	whole time.Time
}

// source is the Framer's reader: one whole frame (or header block) of
// the caller's buffer at a time.
type source struct{ b []byte }

func (s *source) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

func newConnDecoder(c *Codec, server bool) *connDecoder {
	d := &connDecoder{c: c, server: server, preface: server, streams: make(map[uint32]*stream), send: newSendWindow(), now: time.Now}
	d.fr = http2.NewFramer(&d.owed, &d.src)
	d.fr.SetReuseFrames() // a DATA frame's data is copied before the next one is read
	d.fr.SetMaxReadFrameSize(maxFrameSize)
	d.hdec = hpack.NewDecoder(4096, d.block.emit)
	d.hdec.SetMaxStringLength(c.maxMessage)
	return d
}

// Owed appends the frames owed to the peer and forgets them: ACKs and
// credit. The frames its flow control let go come from Released (send.go).
func (d *connDecoder) Owed(dst []byte) []byte {
	dst = append(dst, d.owed.b...)
	d.owed.b = d.owed.b[:0]
	return dst
}

// Decode consumes the client preface, one frame, or one whole header block
// (HEADERS and its CONTINUATION frames) at the front of buf. It returns a
// request or response once its stream ends, else KindControl.
func (d *connDecoder) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	if d.preface {
		return d.readPreface(buf, msg)
	}
	if d.send.hasResets.Load() {
		d.forgetResets()
	}
	n, err := d.frameEnd(buf)
	if n == 0 || err != nil {
		return 0, err
	}
	d.src.b = buf[:n]
	f, err := d.fr.ReadFrame()
	if err != nil {
		return 0, fmt.Errorf("triple: %w", err)
	}
	msg.Kind, msg.Raw = protocols.KindControl, buf[:n]
	switch f := f.(type) {
	case *http2.HeadersFrame:
		err = d.headerBlock(f, msg) // header.go
	case *http2.DataFrame:
		err = d.data(f, msg)
	case *http2.SettingsFrame:
		if !f.IsAck() {
			d.settings(f)
			err = d.fr.WriteSettingsAck()
		}
	case *http2.GoAwayFrame:
		d.goAway(f)
	case *http2.WindowUpdateFrame:
		d.send.windowUpdate(f.StreamID, f.Increment)
		if f.StreamID != 0 {
			d.credits = append(d.credits, protocols.StreamCredit{ID: idOf(f.StreamID), N: f.Increment})
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			err = d.fr.WritePing(true, f.Data)
		}
	case *http2.RSTStreamFrame:
		err = d.reset(f, msg)
	case *http2.PushPromiseFrame:
		err = fmt.Errorf("triple: PUSH_PROMISE, which the proxy's SETTINGS disabled")
	}
	// PRIORITY, a client's GOAWAY and unknown frames change nothing the
	// proxy keeps (README.md, Limits).
	if err != nil {
		return 0, err
	}
	return n, nil
}

// forgetResets forgets the streams the proxy reset since the last call
// (sendWindow.resetSent): their peer sends nothing more that counts.
func (d *connDecoder) forgetResets() {
	for _, id := range d.send.takeResets() {
		delete(d.streams, id)
	}
}

// PeerLimits reports what an upstream's SETTINGS and GOAWAY frames said
// (protocols.PeerLimiter): request ID n is stream 2n+1.
func (d *connDecoder) PeerLimits() protocols.PeerLimits { return d.limits }

// settings notes an upstream's SETTINGS_MAX_CONCURRENT_STREAMS (a later
// SETTINGS frame may change it).
func (d *connDecoder) settings(f *http2.SettingsFrame) {
	if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
		d.send.setInitial(v)
	}
	if v, ok := f.Value(http2.SettingHeaderTableSize); ok {
		d.send.setTableLimit(v)
	}
	if d.server {
		return
	}
	d.limits.Settled = true
	if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
		d.limits.MaxInFlight = v
	}
}

// goAway notes an upstream's GOAWAY: the streams above its last stream
// were not processed. A server may send several, the last stream falling
// (grpc-go's graceful stop first says 2^31-1, then the real one).
func (d *connDecoder) goAway(f *http2.GoAwayFrame) {
	if d.server {
		return
	}
	last := uint64(0) // no stream processed: every request ID is above
	if f.LastStreamID > 0 {
		last = idOf(f.LastStreamID)
	}
	if !d.limits.Away || last < d.limits.LastID {
		d.limits.Away, d.limits.LastID = true, last
	}
}

var _ protocols.PeerLimiter = (*connDecoder)(nil)

// errNotPreface begins the error for a client that does not speak HTTP/2.
const errNotPreface = "triple: not the HTTP/2 client preface"

func (d *connDecoder) readPreface(buf []byte, msg *protocols.Message) (int, error) {
	n := min(len(buf), len(http2.ClientPreface))
	if string(buf[:n]) != http2.ClientPreface[:n] {
		return 0, fmt.Errorf("%s: %q", errNotPreface, buf[:n])
	}
	if n < len(http2.ClientPreface) {
		return 0, nil
	}
	d.preface = false
	d.owed.b = d.c.settings(d.owed.b, true)
	msg.Kind, msg.Raw = protocols.KindControl, buf[:n]
	return n, nil
}

// frameEnd returns the length of the frame at the front of buf, or of the
// whole header block when it is a HEADERS frame without END_HEADERS; 0
// while buf holds less.
func (d *connDecoder) frameEnd(buf []byte) (int, error) {
	for off := 0; ; {
		if len(buf) < off+frameHeaderLen {
			return 0, nil
		}
		h := parseHeader(buf[off:])
		end := off + frameHeaderLen + h.length
		switch {
		case h.length > maxFrameSize:
			return 0, fmt.Errorf("triple: frame of %d bytes exceeds %d", h.length, maxFrameSize)
		case end > d.c.maxMessage && (off > 0 || h.typ == http2.FrameHeaders):
			// A DATA frame is held to the limit by data(), or, relayed,
			// by its stream's window.
			return 0, fmt.Errorf("triple: header block of more than %d bytes exceeds the limit %d", end, d.c.maxMessage)
		case off > 0 && h.typ != http2.FrameContinuation:
			return 0, fmt.Errorf("triple: %v frame inside a header block", h.typ)
		case off == 0 && h.typ != http2.FrameHeaders, h.flags.Has(http2.FlagHeadersEndHeaders):
			if len(buf) < end {
				return 0, nil
			}
			return end, nil
		}
		off = end
	}
}

// headers takes the header block of stream id that d.block.fields holds
// (valid until the next block), ending the stream when ended.
func (d *connDecoder) headers(id uint32, ended bool, msg *protocols.Message) error {
	fields := d.block.fields
	st := d.streams[id]
	switch {
	case st == nil && id%2 == 0:
		return fmt.Errorf("triple: HEADERS on stream %d, not a client's", id)
	case st == nil:
		if d.server && len(d.streams) >= d.c.maxStreams {
			return fmt.Errorf("triple: more than %d concurrent streams", d.c.maxStreams)
		}
		st = d.newStream()
		st.fields = append(st.fields, fields...)
		d.streams[id] = st
	case !ended:
		return fmt.Errorf("triple: trailers that do not end stream %d", id)
	case st.relay && d.server:
		d.relayRequestTrailers(id, fields, msg)
		return nil
	case st.relay:
		return d.relayTrailers(id, fields, msg)
	default:
		st.trailers, st.hasTrailers = append(st.trailers, fields...), true
	}
	if ended {
		return d.complete(id, st, msg)
	}
	return nil
}

func (d *connDecoder) data(f *http2.DataFrame, msg *protocols.Message) error {
	if err := d.creditConn(f.Header().Length); err != nil {
		return err
	}
	st := d.streams[f.StreamID]
	if st == nil {
		return nil // a stream already reset: its data is dropped
	}
	switch {
	case st.relay && d.server:
		return d.relayRequestData(f, msg)
	case st.relay:
		if pad := f.Header().Length - uint32(len(f.Data())); pad > 0 && !f.StreamEnded() {
			// Padding is not relayed, so the client never credits it:
			// the upstream gets it back now.
			if err := d.fr.WriteWindowUpdate(f.StreamID, pad); err != nil {
				return err
			}
		}
		d.relayData(f.StreamID, f.Data(), f.StreamEnded(), msg)
		return nil
	}
	st.data = append(st.data, f.Data()...)
	st.read += int(f.Header().Length)
	if f.StreamEnded() && len(st.data) <= d.c.maxMessage {
		return d.complete(f.StreamID, st, msg)
	}
	if secondBegun(st.data) && !f.StreamEnded() {
		// A stream: relayed from now on. A client's data so far may
		// pass the limit, as several messages in one frame can, but not
		// its stream window: the proxy credits no stream before it is
		// relayed.
		if d.server && st.read <= int(d.c.window()) {
			return d.startRequestRelay(f.StreamID, st, msg) // relay_request.go
		}
		if !d.server && len(st.data) <= d.c.maxMessage {
			return d.startRelay(f.StreamID, st, msg)
		}
	}
	if len(st.data) > d.c.maxMessage {
		return fmt.Errorf("triple: message on stream %d exceeds the limit %d", f.StreamID, d.c.maxMessage)
	}
	if wholeFirst(st.data) {
		d.ripe = append(d.ripe, f.StreamID) // for Promote (relay.go)
		if d.grace > 0 && st.whole.IsZero() {
			st.whole = d.now()
		}
	}
	return nil
}

// creditConn counts n bytes of DATA read against the connection's window
// and gives the peer its credit back once a quarter of the window is
// used: a WINDOW_UPDATE per DATA frame would cost the peer a frame to
// handle per message (grpc-go credits the same way). The peer may still
// send the other three quarters meanwhile, and sending them passes the
// quarter, so it never waits for credit held here.
func (d *connDecoder) creditConn(n uint32) error {
	d.unacked += n
	if d.unacked < d.c.window()/4 {
		return nil
	}
	n, d.unacked = d.unacked, 0
	return d.fr.WriteWindowUpdate(0, n)
}

// reset forgets a stream its peer reset. On an upstream connection, the
// call it carried gets an UNAVAILABLE reply (unless the stream ended
// cleanly).
func (d *connDecoder) reset(f *http2.RSTStreamFrame, msg *protocols.Message) error {
	st := d.streams[f.StreamID]
	delete(d.streams, f.StreamID)
	d.send.reset(f.StreamID)
	if d.server && f.StreamID%2 == 1 {
		d.credits = append(d.credits, protocols.StreamCredit{ID: idOf(f.StreamID), Reset: true})
	}
	if d.server || f.ErrCode == http2.ErrCodeNo || f.StreamID%2 == 0 {
		return nil
	}
	if st != nil && st.relay {
		d.relayReset(f.StreamID, f.ErrCode, msg) // relay.go
		return nil
	}
	d.out = d.c.StatusReply(d.out[:0], &protocols.Message{ID: idOf(f.StreamID)}, codeUnavailable,
		"metamesh: the upstream reset the stream: "+f.ErrCode.String())
	return d.emit(msg)
}

// complete writes the ended stream id as one message in the codec's own
// form and decodes it into msg.
func (d *connDecoder) complete(id uint32, st *stream, msg *protocols.Message) error {
	delete(d.streams, id)
	w := getWriter(d.out[:0])
	d.memo[0].headers(w, id, st.fields, len(st.data) == 0 && !st.hasTrailers)
	blockEnd := len(w.out.b)
	if len(st.data) > 0 {
		w.data(id, st.data, !st.hasTrailers)
	}
	if st.hasTrailers {
		d.memo[1].headers(w, id, st.trailers, true)
	}
	d.out = w.put()
	err := d.emitFields(msg, id, st, blockEnd)
	d.recycle(st)
	if err != nil {
		if !d.server {
			return err
		}
		// A client's malformed call: its stream is refused, the
		// connection stays.
		msg.Reset()
		msg.Kind = protocols.KindControl
		return d.fr.WriteRSTStream(id, http2.ErrCodeProtocol)
	}
	return nil
}

// newStream returns a stream to fill: a spare one, or a new one.
func (d *connDecoder) newStream() *stream {
	if n := len(d.spare); n > 0 {
		st := d.spare[n-1]
		d.spare = d.spare[:n-1]
		return st
	}
	return &stream{}
}

// recycle keeps st, a completed stream nothing refers to any more, for
// a new one, with the room of its slices.
func (d *connDecoder) recycle(st *stream) {
	if len(d.spare) >= maxSpare {
		return
	}
	data := st.data[:0]
	if cap(data) > maxSpareData {
		data = nil
	}
	*st = stream{data: data, fields: spareFields(st.fields), trailers: spareFields(st.trailers)}
	d.spare = append(d.spare, st)
}

// spareFields returns fields emptied for reuse, or nil when it has more
// room than a usual block needs (a client's one large block is not kept
// for the connection's life).
func spareFields(fields []hpack.HeaderField) []hpack.HeaderField {
	if cap(fields) > maxSpareFields {
		return nil
	}
	clear(fields)
	return fields[:0]
}

// emitFields sets msg to d.out, the ended stream id written in the
// codec's own form, from the fields its header blocks were written from:
// what Decode would find in d.out without decoding it again. The
// connection's header reads have checked the fields (header.go).
func (d *connDecoder) emitFields(msg *protocols.Message, id uint32, st *stream, blockEnd int) error {
	if len(d.out) > d.c.maxMessage {
		return fmt.Errorf("triple: message of %d bytes exceeds the limit %d", len(d.out), d.c.maxMessage)
	}
	raw := msg.Raw
	msg.Reset()
	if err := classify(msg, st.fields, st.trailers, st.hasTrailers); err != nil {
		msg.Raw = raw
		return err
	}
	msg.ID = idOf(id)
	msg.Raw = d.out[:len(d.out):len(d.out)]
	msg.Marks[markBlockEnd] = blockEnd
	return nil
}

// emit decodes d.out, a message in the codec's own form, into msg.
func (d *connDecoder) emit(msg *protocols.Message) error {
	raw := msg.Raw
	n, err := d.c.Decode(d.out, msg)
	if err == nil && n != len(d.out) {
		err = fmt.Errorf("triple: rewrote a message into %d bytes of which %d decode", len(d.out), n)
	}
	if err != nil {
		msg.Raw = raw
		return err
	}
	return nil
}
