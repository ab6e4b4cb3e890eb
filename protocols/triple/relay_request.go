package triple

import (
	"fmt"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// Request relay (docs/triple-streams.md, piece 5). A client's request is
// kept whole while it holds at most one gRPC message, as a unary call's
// (or a server stream's) does. Once a second message begins before the
// stream ends, or a read ends with a whole message of a stream that has
// not ended and nothing more of it (Promote: a bidirectional client that
// waits for an answer before it sends again), the request is a client or
// bidirectional stream: what arrived of it goes to the proxy as a first
// part, a request with More (its HEADERS and the DATA so far), which the
// proxy routes once; each later DATA frame is a part of its own
// (protocols.KindPart, More on all but the last), which the proxy writes
// on the upstream stream the first part opened.
//
// Flow control is passed through as for responses (relay.go), the other
// way: the client gets stream credit for a relayed request only as the
// upstream gives the proxy credit for it (Credits on the upstream's
// connection, Credit on the client's), so an upstream that reads slowly
// slows the client, and the proxy holds at most one stream window of the
// request (the window it advertises to clients, maxMessageBytes); a
// client that sends past its window is disconnected (send.go, requests).

// startRequestRelay makes stream id, a client's request, a relayed one:
// its headers and the data so far go to the proxy as the first part. A
// request whose headers are not a call's is refused with RST_STREAM
// PROTOCOL_ERROR, as a whole one is (complete); msg is then KindControl.
func (d *connDecoder) startRequestRelay(id uint32, st *stream, msg *protocols.Message) error {
	blockEnd := d.firstPart(id, st)
	raw := msg.Raw
	err := validFields(st.fields)
	if err == nil {
		err = classify(msg, st.fields, nil, false)
	}
	if err != nil || msg.Kind != protocols.KindRequest {
		delete(d.streams, id)
		msg.Reset()
		msg.Kind, msg.Raw = protocols.KindControl, raw
		return d.fr.WriteRSTStream(id, http2.ErrCodeProtocol)
	}
	d.partOf(msg, id, true)
	msg.Marks[markBlockEnd] = blockEnd
	d.send.requestOpen(id, int64(d.c.window())-int64(st.read))
	return nil
}

// relayRequestData sends one DATA frame of a relayed request as a part
// (the last one if it ends the stream).
func (d *connDecoder) relayRequestData(f *http2.DataFrame, msg *protocols.Message) error {
	id, end := f.StreamID, f.StreamEnded()
	if !d.send.requestReceived(id, int64(f.Header().Length)) {
		return fmt.Errorf("triple: stream %d's DATA exceeds its flow-control window (FLOW_CONTROL_ERROR)", id)
	}
	if end {
		delete(d.streams, id)
		d.send.requestEnded(id)
	} else if pad := f.Header().Length - uint32(len(f.Data())); pad > 0 {
		// Padding is not relayed, so the upstream never credits it: the
		// client gets it back now.
		if err := d.fr.WriteWindowUpdate(id, pad); err != nil {
			return err
		}
		d.send.requestCredited(id, pad)
	}
	if len(f.Data()) == 0 && !end {
		return nil
	}
	w := getWriter(d.out[:0])
	w.data(id, f.Data(), end)
	d.out = w.put()
	msg.Kind = protocols.KindPart
	d.partOf(msg, id, !end)
	msg.Marks[markPart] = 1
	return nil
}

// relayRequestTrailers sends the trailers that end a relayed request as
// its last part.
func (d *connDecoder) relayRequestTrailers(id uint32, fields []hpack.HeaderField, msg *protocols.Message) {
	delete(d.streams, id)
	d.send.requestEnded(id)
	w := getWriter(d.out[:0])
	w.headers(id, fields, true)
	d.out = w.put()
	msg.Kind = protocols.KindPart
	d.partOf(msg, id, false)
	msg.Marks[markPart] = 1
}
