package protocols

// Model is how a protocol pairs responses with requests, which decides how
// the proxy shares upstream connections.
type Model uint8

const (
	// Multiplexed protocols carry a request ID that the response echoes
	// (Dubbo, Thrift). Many requests share a few upstream connections;
	// the proxy rewrites the ID per upstream connection and restores it on
	// the response.
	Multiplexed Model = iota + 1
	// Pipelined protocols answer requests on a connection in order
	// (Redis). Requests share upstream connections and responses are
	// matched first in, first out.
	Pipelined
	// Exclusive protocols have neither IDs nor ordering guarantees: one
	// request in flight per upstream connection, taken from a pool.
	Exclusive
)

func (m Model) String() string {
	switch m {
	case Multiplexed:
		return "multiplexed"
	case Pipelined:
		return "pipelined"
	case Exclusive:
		return "exclusive"
	}
	return "unknown"
}

// Reason is why the proxy answers a request itself instead of forwarding
// it. Each codec maps a Reason to its native error (docs/reference.md,
// Error replies).
type Reason uint8

// The local reply reasons.
const (
	ReasonNoRoute Reason = iota + 1
	ReasonNoHealthyUpstream
	ReasonTimeout
	ReasonOverloaded
	ReasonRateLimited
	// ReasonDenied: an authorization policy refused the request; the text
	// names the policy (docs/authorization.md).
	ReasonDenied
)

var reasonNames = [...]string{"", "no_route", "no_healthy_upstream", "timeout", "overloaded", "rate_limited", "denied"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) && r != 0 {
		return reasonNames[r]
	}
	return "unknown"
}

// Codec reads and writes the frames of one protocol. See the package
// documentation for the rules an implementation follows.
type Codec interface {
	// Model declares how responses pair with requests.
	Model() Model

	// Decode decodes the first frame in buf into msg (which it resets)
	// and returns its length. It returns (0, nil) when buf does not yet
	// hold a whole frame, and an error when the bytes can never form a
	// valid frame, including one longer than the configured limit.
	Decode(buf []byte, msg *Message) (int, error)

	// Encode appends msg's frame to dst with the request ID replaced by
	// id and the headers in set added or replaced (a codec whose frame
	// has no place for them ignores set and documents it).
	Encode(dst []byte, msg *Message, id uint64, set []Header) ([]byte, error)

	// ErrorReply appends the protocol-native error response to req for
	// reason, with text as its message where the protocol has one.
	ErrorReply(dst []byte, req *Message, reason Reason, text string) []byte

	// HeartbeatReply appends the answer to the heartbeat req.
	HeartbeatReply(dst []byte, req *Message) []byte
}

// ResponseDecoder is implemented by codecs whose responses can't be told
// from requests by their bytes (a Redis reply may look like a command).
// The proxy decodes frames from upstreams with DecodeResponse, which
// follows Decode's rules; other codecs' Decode classifies both directions.
type ResponseDecoder interface {
	DecodeResponse(buf []byte, msg *Message) (int, error)
}

// ResponseClass is what a response says about the server that sent it.
type ResponseClass uint8

// Response classes.
const (
	// ClassOK: the server handled the request (an application-level
	// error the server chose to return is still OK).
	ClassOK ResponseClass = iota
	// ClassServerError: the server failed the request (HTTP 5xx-like).
	// Counts toward outlier ejection.
	ClassServerError
	// ClassUnavailable: the server is overloaded or not ready. A server
	// error that a retry on another host may fix (retryOn "unavailable").
	ClassUnavailable
)

// ResponseClassifier is implemented by codecs whose responses can say the
// server failed. Without it, a KindError response is ClassServerError and
// anything else ClassOK.
type ResponseClassifier interface {
	// Classify tells the class of resp, a decoded response.
	Classify(resp *Message) ResponseClass
}

// Classify returns c's class for resp, with the default above when c
// doesn't classify responses.
func Classify(c Codec, resp *Message) ResponseClass {
	if rc, ok := c.(ResponseClassifier); ok {
		return rc.Classify(resp)
	}
	if resp.Kind == KindError {
		return ClassServerError
	}
	return ClassOK
}

// StatusReplier is implemented by codecs whose error replies carry a
// numeric status the user can name (fault injection's abort status).
type StatusReplier interface {
	// StatusReply appends to dst an error reply to req with the codec's
	// native status and text as its message.
	StatusReply(dst []byte, req *Message, status uint32, text string) []byte
}

// Rejecter is implemented by codecs that can tell a client why a frame
// Decode refused (one over the size limit) is not served, before the
// proxy closes the connection.
type Rejecter interface {
	// RejectReply appends to dst the reply to the frame that buf starts
	// with, which Decode refused with err. It returns dst unchanged when
	// that frame can't be answered (no request ID can be read, a oneway
	// request).
	RejectReply(dst, buf []byte, err error) []byte
}

// Drainer is implemented by codecs whose protocol lets a server announce
// that it is going away (Dubbo's readonly event), so clients send new
// requests elsewhere while the proxy drains.
type Drainer interface {
	// DrainFrame appends the frame that announces the drain to dst.
	DrainFrame(dst []byte) []byte
}
