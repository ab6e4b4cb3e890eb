package protocols

import "time"

// Deadliner is implemented by codecs whose requests can carry their own
// timeout (Triple's grpc-timeout). The proxy waits for the reply no longer
// than the smaller of it and the route's timeout, and answers with the
// codec's timeout reply when it expires.
type Deadliner interface {
	// RequestTimeout returns the timeout req carries, or 0 when it
	// carries none (or one the codec can't read).
	RequestTimeout(req *Message) time.Duration
}
