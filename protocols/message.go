package protocols

// Kind says what a decoded frame is and so how the proxy treats it.
type Kind uint8

// The frame kinds. A heartbeat is answered by the proxy; a heartbeat reply
// is consumed by it. A oneway request expects no response.
const (
	KindRequest Kind = iota + 1
	KindOneway
	KindResponse
	KindError
	KindHeartbeat
	KindHeartbeatReply
	// KindControl is a frame of the connection's own that a ConnDecoder
	// consumed (HTTP/2 SETTINGS, WINDOW_UPDATE, a stream's frame before
	// its message is whole): nothing to route or answer.
	KindControl
	// KindPart is a later part of a streamed request (a request with
	// More was its first): Triple's DATA frames of a client or
	// bidirectional stream, relayed as they come on the upstream stream
	// the first part opened, the last one without More. Only ConnDecoders
	// return it (docs/triple-streams.md, piece 5).
	KindPart
)

var kindNames = [...]string{"", "request", "oneway", "response", "error", "heartbeat", "heartbeat_reply", "control", "part"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && k != 0 {
		return kindNames[k]
	}
	return "unknown"
}

// IsRequest reports whether a frame of this kind travels client to server
// and is routed.
func (k Kind) IsRequest() bool { return k == KindRequest || k == KindOneway }

// IsResponse reports whether a frame of this kind answers a request.
func (k Kind) IsResponse() bool { return k == KindResponse || k == KindError }

// MarkCount is how many codec-private positions a Message carries.
const MarkCount = 6

// Message is one decoded frame. The proxy reuses Messages: a codec's Decode
// must overwrite every field it uses (Reset does that).
type Message struct {
	// Kind classifies the frame.
	Kind Kind
	// ID is the request ID that pairs a response with its request, in the
	// codec's own width (Dubbo: 64 bits; Thrift: the 32-bit seqid). Zero
	// for protocols that pair by order.
	ID uint64
	// Status is the codec's native response status (Dubbo's status byte,
	// Thrift's exception type), meaningful for responses only.
	Status uint32
	// Headers holds the routing attributes the codec exposes.
	Headers Headers
	// Raw is the whole frame as it was read: the end of the bytes Decode
	// consumed (a codec may skip padding before a frame, as Redis skips
	// blank lines). It aliases the proxy's read buffer and is valid only
	// until the proxy reads again.
	Raw []byte
	// Marks are codec-private offsets into Raw recorded by Decode for its
	// own Encode (where the ID or the header block sits).
	Marks [MarkCount]int
	// More marks a response that does not end its request's answer: more
	// responses to the same request follow, the last one without More (a
	// streamed response, relayed part by part: Triple's HEADERS, each
	// DATA frame, its trailers). On a request (or a KindPart) it marks a
	// streamed request: parts of kind KindPart with the same ID follow.
	// Only ConnDecoders set it (docs/triple-streams.md).
	More bool
}

// Reset clears m for reuse, keeping the header storage.
func (m *Message) Reset() {
	m.Kind, m.ID, m.Status, m.Raw, m.More = 0, 0, 0, nil, false
	m.Marks = [MarkCount]int{}
	m.Headers.Reset()
}
