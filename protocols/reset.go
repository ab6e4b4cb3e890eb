package protocols

// Resetter is implemented by pipelined codecs whose upstream connections
// can be brought back to the state of a new one, handshake done. The
// proxy then keeps an upstream connection a client had to itself (Pin,
// Once) for the next such client instead of closing it: it sends Reset's
// requests once every call on the connection is answered, and reuses the
// connection only when every reply is the one ResetReplyOK expects.
type Resetter interface {
	// Reset appends the requests that reset a connection, the codec's
	// handshake (Handshaker) included, and says how many replies they get.
	Reset(dst []byte) ([]byte, int)
	// ResetReplyOK reports whether reply is the expected reply to the
	// i-th of Reset's requests (from 0). Any other closes the connection.
	ResetReplyOK(i int, reply *Message) bool
}
