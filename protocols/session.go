package protocols

// Verdict is what a Session decides about one request.
type Verdict uint8

// The verdicts.
const (
	// Forward routes the request as usual.
	Forward Verdict = iota
	// Answer means the session appended the request's reply itself; the
	// request is not routed.
	Answer
	// Close is Answer, then the client connection is closed once the
	// reply is written (a client's QUIT).
	Close
	// Pin routes the request as usual, but on an upstream connection of
	// this client's own, and sends every later request of the client on
	// that connection, whatever its attributes, until one with Unpin (a
	// transaction: Redis WATCH or MULTI until EXEC or DISCARD).
	Pin
	// Unpin sends the request on the pinned connection, which is let go
	// once it is answered: reset and kept for another client's use when
	// the codec is a Resetter, else closed.
	Unpin
	// Once routes the request on an upstream connection of its own, let
	// go as with Unpin once it is answered (a blocking command that must
	// not stall a shared pipeline).
	Once
	// Abandon is Answer, and the pinned connection is let go without the
	// request being sent on it (reset before another client uses it, or
	// closed, as with Unpin): a Redis EXEC of a transaction that failed
	// while queued, answered with -EXECABORT.
	Abandon
	// Stream routes the request as Pin does, on an upstream connection of
	// the client's own that becomes a stream (a Redis SUBSCRIBE): every
	// frame the upstream sends on it, prompted or not, is relayed to the
	// client as it comes, and the client's later requests go on it with
	// no reply of their own awaited, until the codec's StreamWatch says
	// the stream is over (the connection is then let go as with Unpin and
	// the session told: StreamSession) or the session says Abandon.
	Stream
)

// Streamer is implemented by codecs whose sessions say Stream.
type Streamer interface {
	// NewStreamWatch returns what follows the frames of one stream.
	NewStreamWatch() StreamWatch
}

// StreamWatch follows the frames of one stream, in order, from one
// goroutine.
type StreamWatch interface {
	// Ended reports whether the stream is over once frame is relayed
	// (Redis: the unsubscribe that leaves no subscription).
	Ended(frame *Message) bool
}

// StreamSession is implemented by Sessions that say Stream: StreamEnded
// tells them the stream ended, before their next request is intercepted.
type StreamSession interface {
	StreamEnded()
}

// RefusalListener is implemented by Sessions that must know when the
// proxy answers a request with an error of its own after Intercept let it
// through (no route, denied, rate limited, no upstream): Redis fails the
// transaction the request was queued in, as redis-server does for a
// command it refuses while queuing. pinned says whether the client still
// has its own upstream connection (a refused request that was to pin one
// did not).
type RefusalListener interface {
	Refused(pinned bool)
}

// Preambler is implemented by Sessions that have requests to send on a
// newly pinned connection before the pinning one (Redis: the MULTI the
// proxy already acknowledged). Their replies are discarded.
type Preambler interface {
	// Preamble returns whole request frames, in order.
	Preamble() []Message
}

// SessionCodec is implemented by codecs that keep per-connection state
// or answer some requests themselves: Redis answers PING, AUTH, SELECT
// and QUIT, and refuses commands that can't be proxied, in the proxy.
type SessionCodec interface {
	// NewSession returns the state of one new client connection.
	NewSession() Session
}

// Session is one client connection's protocol state. The proxy calls it
// from that connection's read loop only, so it needs no locking.
type Session interface {
	// Intercept looks at a decoded request before it is routed. To answer
	// it, it appends the reply to dst and returns Answer or Close; to let
	// it be routed, it returns dst unchanged and Forward. req is valid
	// only during the call.
	Intercept(dst []byte, req *Message) ([]byte, Verdict)
}

// Splitter is implemented by codecs whose requests may carry several
// independent keys that are routed one by one (Redis MGET, MSET, DEL,
// EXISTS, UNLINK, TOUCH): the proxy routes each part as a request of its
// own, waits for all their replies and writes the merged one.
type Splitter interface {
	// Split appends to parts the requests req is made of, each a whole
	// frame with its attributes as Decode would give them and its own
	// bytes (not aliasing req.Raw). It returns parts unchanged when req
	// is to be routed whole.
	Split(parts []Message, req *Message) []Message
	// Merge appends to dst the reply to req made of its parts' replies,
	// whole reply frames in part order (a part the proxy answered itself
	// has the codec's error reply).
	Merge(dst []byte, req *Message, replies [][]byte) []byte
}

// UpstreamVariant is implemented by Sessions whose client state decides
// which upstream connections its requests may use (Redis: the database
// SELECT chose). The proxy sends the client's requests on connections of
// the codec UpstreamCodec returns, pooled apart by that value.
type UpstreamVariant interface {
	UpstreamCodec() Codec
}

// Variant is implemented by codecs made from another for one kind of
// upstream connection (Redis's that send READONLY or SELECT n on each):
// BaseCodec returns the codec they were made from, the one listeners use.
type Variant interface {
	BaseCodec() Codec
}

// Handshaker is implemented by codecs that send requests of their own on
// every new upstream connection before any client's (Redis: AUTH with the
// upstream password; Triple: the HTTP/2 client preface, with no reply).
// The proxy discards their replies; an error reply closes the connection,
// so clients get the proxy's error instead of the server's refusals.
type Handshaker interface {
	// Handshake appends the requests to dst and says how many there are.
	Handshake(dst []byte) ([]byte, int)
}
