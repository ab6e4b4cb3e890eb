package triple

import (
	"encoding/binary"
	"slices"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// Response relay (docs/triple-streams.md, piece 4). An upstream's
// response is kept whole while it holds at most one gRPC message, as a
// unary call's does: it is then one message, which every unary policy
// handles as before. Once a second message begins on a stream that has
// not ended, the stream is a server (or bidirectional) stream: what
// arrived of it goes to the proxy as a first part (the response HEADERS
// and the DATA so far, without END_STREAM), then each DATA frame as a part
// of its own as it is read, and the trailers as the last part; every part
// but the last has More set. A part is a message in the codec's own form
// (frames of one stream, header blocks that need no connection state)
// whose first frame need not be HEADERS.
//
// Flow control is passed through: the proxy gives the upstream credit for
// a relayed stream only when the client gives the proxy credit for it
// (Credits on the client's connection, Credit on the upstream's), so a
// client that reads slowly slows the server, and the proxy holds at most
// one stream window of the stream (the window it advertises upstream),
// whatever the stream's length.

// markPart is set (1) in a part after the first: Raw has no first header
// block, so Encode sets no header in it.
const markPart = markBlockEnd + 1

// secondBegun reports whether data, a stream's DATA so far, holds a whole
// gRPC message and the start of another.
func secondBegun(data []byte) bool {
	if len(data) < 5 {
		return false
	}
	end := 5 + int(binary.BigEndian.Uint32(data[1:5]))
	return len(data) > end
}

// wholeFirst reports whether data, a stream's DATA so far, holds a whole
// gRPC message.
func wholeFirst(data []byte) bool {
	return len(data) >= 5 && len(data) >= 5+int(binary.BigEndian.Uint32(data[1:5]))
}

// Promote relays the responses (upstream connection) or requests
// (client connection: relay_request.go) that hold a whole message and
// have not ended, with nothing more read of them (protocols.Promoter): a
// server stream whose server sends its first message and waits gets it to
// the client now, and a bidirectional stream whose client waits for an
// answer gets its first message to the server. A client's request waits
// for its end for the grace WaitToPromote set first, so that a unary call
// whose END_STREAM comes in a later read stays a unary call; one whose end
// comes later still is relayed, which its peer can't tell.
func (d *connDecoder) Promote(msg *protocols.Message) bool {
	var now time.Time
	for i := 0; i < len(d.ripe); {
		id := d.ripe[i]
		st := d.streams[id]
		if st == nil || st.relay || !wholeFirst(st.data) {
			d.ripe = slices.Delete(d.ripe, i, i+1)
			continue // ended, reset, or relayed meanwhile
		}
		if d.server && d.grace > 0 {
			if now.IsZero() {
				now = d.now()
			}
			if now.Before(st.whole.Add(d.grace)) {
				i++ // held: PromoteAt
				continue
			}
		}
		d.ripe = slices.Delete(d.ripe, i, i+1)
		msg.Reset()
		if d.server {
			if err := d.startRequestRelay(id, st, msg); err != nil || msg.Kind != protocols.KindRequest {
				continue // refused: its RST_STREAM is owed
			}
			return true
		}
		if err := d.startRelay(id, st, msg); err != nil {
			continue // its headers are not a response's: left to its end
		}
		return true
	}
	return false
}

// WaitToPromote sets how long a client's request that holds a whole
// message waits for its end before Promote relays it
// (protocols.PromoteWaiter); 0, the default, is not at all.
func (d *connDecoder) WaitToPromote(grace time.Duration) { d.grace = grace }

// PromoteAt reports when Promote has a request to relay that it holds now
// (zero: none).
func (d *connDecoder) PromoteAt() time.Time {
	var at time.Time
	for _, id := range d.ripe {
		if st := d.streams[id]; st != nil && !st.relay && !st.whole.IsZero() {
			if due := st.whole.Add(d.grace); at.IsZero() || due.Before(at) {
				at = due
			}
		}
	}
	return at
}

// firstPart marks stream id relayed and writes its first part to d.out:
// its headers and the data so far. It returns the end of the header block.
func (d *connDecoder) firstPart(id uint32, st *stream) (blockEnd int) {
	st.relay = true
	w := getWriter(d.out[:0])
	w.headers(id, st.fields, false)
	blockEnd = len(w.out.b)
	w.data(id, st.data, false)
	d.out = w.put()
	st.data = nil
	return blockEnd
}

// startRelay makes stream id, an upstream's response, a relayed one: its
// headers and the data so far go out as the first part.
func (d *connDecoder) startRelay(id uint32, st *stream, msg *protocols.Message) error {
	blockEnd := d.firstPart(id, st)
	if err := responseAttributes(msg, "200", st.fields); err != nil {
		return err
	}
	// Its status is the trailers', still to come.
	msg.Kind, msg.Status = protocols.KindResponse, 0
	d.partOf(msg, id, true)
	msg.Marks[markBlockEnd] = blockEnd
	return nil
}

// relayData sends one DATA frame's data of a relayed stream as a part
// (the last one if it ends the stream).
func (d *connDecoder) relayData(id uint32, data []byte, end bool, msg *protocols.Message) {
	if len(data) == 0 && !end {
		return
	}
	w := getWriter(d.out[:0])
	w.data(id, data, end)
	d.out = w.put()
	msg.Kind = protocols.KindResponse
	d.partOf(msg, id, !end)
	msg.Marks[markPart] = 1
	if end {
		delete(d.streams, id)
	}
}

// relayTrailers sends the trailers of a relayed stream as its last part,
// with the status they carry.
func (d *connDecoder) relayTrailers(id uint32, fields []hpack.HeaderField, msg *protocols.Message) error {
	delete(d.streams, id)
	w := getWriter(d.out[:0])
	w.headers(id, fields, true)
	d.out = w.put()
	if err := responseAttributes(msg, "200", fields); err != nil {
		return err
	}
	if _, ok := msg.Headers.Get("grpc-status"); !ok {
		msg.Kind, msg.Status = protocols.KindError, codeInternal
	}
	d.partOf(msg, id, false)
	msg.Marks[markPart] = 1
	return nil
}

// partOf fills in what every part has: its ID, its bytes, More.
func (d *connDecoder) partOf(msg *protocols.Message, id uint32, more bool) {
	msg.ID, msg.Raw, msg.More = idOf(id), d.out, more
}

// Credits appends the credit the peer gave its streams since the last
// call (protocols.Relayer): its WINDOW_UPDATEs, which the proxy passes on
// to the other side of the streams it relays (a client's, for relayed
// responses; an upstream's, for relayed requests), and a client's
// RST_STREAMs, which it passes on as cancels.
func (d *connDecoder) Credits(dst []protocols.StreamCredit) []protocols.StreamCredit {
	dst = append(dst, d.credits...)
	d.credits = d.credits[:0]
	return dst
}

// Credit appends a WINDOW_UPDATE giving the peer n more bytes on the
// stream of request id (protocols.Relayer), which a client's relayed
// request may then use (relay_request.go).
func (d *connDecoder) Credit(dst []byte, id uint64, n uint32) []byte {
	if d.server {
		d.send.requestCredited(streamOf(id), n)
	}
	var b [frameHeaderLen + 4]byte
	b[2], b[3] = 4, byte(http2.FrameWindowUpdate)
	binary.BigEndian.PutUint32(b[5:], streamOf(id))
	binary.BigEndian.PutUint32(b[9:], n&(1<<31-1))
	return append(dst, b[:]...)
}

// Cancel appends an RST_STREAM CANCEL for the stream of request id
// (protocols.Relayer). The stream is forgotten: what is held of it to
// send, and, at the read loop's next Decode, what arrived of it.
func (d *connDecoder) Cancel(dst []byte, id uint64) []byte {
	d.send.resetSent(streamOf(id))
	return appendRST(dst, streamOf(id), http2.ErrCodeCancel)
}

// appendRST appends an RST_STREAM frame.
func appendRST(dst []byte, stream uint32, code http2.ErrCode) []byte {
	var b [frameHeaderLen + 4]byte
	b[2], b[3] = 4, byte(http2.FrameRSTStream)
	binary.BigEndian.PutUint32(b[5:], stream)
	binary.BigEndian.PutUint32(b[9:], uint32(code))
	return append(dst, b[:]...)
}

// relayReset sends an upstream's RST_STREAM of a relayed response as the
// response's last part: its client, which has its headers already, gets
// the reset as it is (with the status UNAVAILABLE for the proxy's
// accounting and retry rules, which a relayed stream escapes anyway).
func (d *connDecoder) relayReset(id uint32, code http2.ErrCode, msg *protocols.Message) {
	d.out = appendRST(d.out[:0], id, code)
	msg.Kind, msg.Status = protocols.KindError, codeUnavailable
	d.partOf(msg, id, false)
	msg.Marks[markPart] = 1
}

var (
	_ protocols.Relayer       = (*connDecoder)(nil)
	_ protocols.Promoter      = (*connDecoder)(nil)
	_ protocols.PromoteWaiter = (*connDecoder)(nil)
)
