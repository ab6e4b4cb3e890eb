package protocols

import "time"

// ConnCodec is implemented by codecs whose wire frames can only be read
// with the state of the connection they arrive on (HTTP/2: HPACK's
// dynamic table, streams whose frames interleave). The proxy reads every
// connection of such a codec through a ConnDecoder of its own, which
// turns the wire's frames into whole messages in the codec's own form:
// bytes that the codec's Decode reads back, that Encode writes, and that
// need no connection state (docs/write-a-codec.md, Connection state).
type ConnCodec interface {
	// NewConnDecoder returns the read state of one new connection: server
	// is true for a client's connection to the proxy, false for the
	// proxy's connection to an upstream.
	NewConnDecoder(server bool) ConnDecoder
}

// ConnDecoder reads one connection. It follows Codec.Decode's rules for
// buf, except that it keeps the connection's state between calls: every
// frame it consumes that is not yet a whole message decodes as
// KindControl, and a message it completes has Raw in the codec's own form
// (owned by the decoder, valid until its next Decode).
type ConnDecoder interface {
	Decode(buf []byte, msg *Message) (int, error)
	// Owed appends to dst what the connection owes its peer for the
	// frames decoded so far (acknowledgements, flow-control credit) and
	// forgets it. The proxy writes it on the connection after every
	// frame, from the read loop.
	Owed(dst []byte) []byte
}

// PeerLimiter is implemented by the ConnDecoders of protocols whose
// server limits the requests in flight on one connection and can announce
// that it goes away (HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS, GOAWAY). The
// proxy asks after every frame it decodes on an upstream connection: it
// sends no more requests at once than the limit (opening another
// connection when every one is full), waits for the server's first
// settings before a new connection's first request, and drains a
// connection whose server goes away.
type PeerLimiter interface {
	PeerLimits() PeerLimits
}

// PeerLimits is what an upstream connection's server said so far.
type PeerLimits struct {
	// Settled: the server's first settings came (before, its limit is
	// not known).
	Settled bool
	// MaxInFlight is the most requests it takes at once; 0: no limit.
	MaxInFlight uint32
	// Away: it goes away, and answers no request whose ID is above
	// LastID (those were not processed: they may be sent again).
	Away   bool
	LastID uint64
}

// ConnEncoder is implemented by the ConnDecoders of protocols whose peer
// limits what the proxy may send on the connection (HTTP/2 flow control).
// The proxy then writes its messages on that connection with the
// ConnDecoder's Encode, not the codec's: it follows Codec.Encode's rules,
// but may hold back part of the frame until the peer makes room, and
// Released returns it then. It is called from any goroutine, concurrently with the
// connection's Decode.
type ConnEncoder interface {
	Encode(dst []byte, msg *Message, id uint64, set []Header) ([]byte, error)
	// Released appends to dst the frames held back by Encode that the
	// peer has since made room for, and forgets them. The proxy calls it
	// from inside the connection writer's Queue, as it calls Encode, so
	// that nothing encoded meanwhile overtakes them (a relayed stream's
	// later part must follow its earlier frames); HasReleased says
	// cheaply, from any goroutine, whether there are any.
	Released(dst []byte) []byte
	HasReleased() bool
}

// Relayer is implemented by the ConnDecoders of protocols whose streamed
// responses and requests (Message.More) are relayed with end-to-end flow
// control (HTTP/2): the proxy gives the upstream credit for a relayed
// response only as the client gives the proxy credit for it, and the
// client credit for a relayed request only as the upstream gives the
// proxy credit for it, so a slow reader slows its writer and the proxy
// holds at most one window per stream and direction
// (docs/triple-streams.md, pieces 4 and 5).
type Relayer interface {
	// Credits appends to dst the credit the peer gave its streams since
	// the last call (the proxy asks after every frame): on a client's
	// connection for responses, on an upstream connection for requests.
	Credits(dst []StreamCredit) []StreamCredit
	// Credit appends to dst the frame giving the peer n more bytes on
	// the stream of request id.
	Credit(dst []byte, id uint64, n uint32) []byte
	// Cancel appends to dst the frame that tells the peer to stop the
	// stream of request id (on an upstream connection: its client reset
	// its stream or went away).
	Cancel(dst []byte, id uint64) []byte
}

// StreamCredit is flow-control credit a peer gave for the stream of one
// request: N more bytes; or, with Reset, the peer reset that stream.
type StreamCredit struct {
	ID    uint64
	N     uint32
	Reset bool
}

// Promoter is implemented by the ConnDecoders of protocols whose
// responses and requests may be relayed in parts (Message.More) and can't
// tell from their first message whether more follow (a gRPC server
// stream's first message looks like a unary call's response; a client
// stream's first message like a unary call's request, but for its end).
// At the end of each read the proxy asks for the responses (upstream
// connection) or requests (client connection) to relay now rather than
// wait for their next bytes: those that hold a whole message and have not
// ended, with nothing more of them read so far (docs/triple-streams.md).
type Promoter interface {
	// Promote fills msg with the first part of one such message and
	// reports true, or reports false when there is none left. msg is
	// valid until the next call or Decode.
	Promote(msg *Message) bool
}

// PromoteWaiter is a Promoter that can hold a client's request back for
// a moment before relaying it: a unary call whose end comes in a later
// read then stays a unary call (retried, mirrored), at the cost of that
// moment for a stream whose client waits for an answer to its first
// message. The proxy turns it on (WaitToPromote) when its read loop can
// wake to ask Promote again at PromoteAt (zero: nothing held).
type PromoteWaiter interface {
	WaitToPromote(d time.Duration)
	PromoteAt() time.Time
}
