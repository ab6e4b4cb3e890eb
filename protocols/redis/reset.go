package redis

import (
	"bytes"

	"github.com/metamesh/metamesh/protocols"
)

// The reset of an upstream connection a client had to itself (a
// transaction, a blocking command) before another client gets it
// (protocols.Resetter). RESET (Redis 6.2 and later) ends whatever the last
// client left: an open MULTI, WATCHed keys, a selected database, a client
// name, RESP3, tracking, a subscription. It also logs the connection out
// (back to the default user), so the handshake's AUTH follows it. DISCARD
// and UNWATCH would cover the transaction alone, and DISCARD's reply
// differs with the state it finds, so a wrong reply could not be told
// from a right one. A server older than 6.2 answers RESET with an error:
// its connections are then closed after use, as they were before pooling.

var (
	resetFrame = AppendCommand(nil, []byte("RESET"))
	resetReply = []byte("+RESET\r\n")
)

// Reset appends RESET and then the handshake (the upstream AUTH, when
// configured).
func (c *Codec) Reset(dst []byte) ([]byte, int) {
	dst = append(dst, resetFrame...)
	dst, n := c.Handshake(dst)
	return dst, 1 + n
}

// ResetReplyOK accepts +RESET for RESET and +OK for the AUTH after it.
func (c *Codec) ResetReplyOK(i int, reply *protocols.Message) bool {
	if i == 0 {
		return bytes.Equal(reply.Raw, resetReply)
	}
	return bytes.Equal(reply.Raw, okReply)
}

var _ protocols.Resetter = (*Codec)(nil)
