package redis

import (
	"bytes"

	"github.com/metamesh/metamesh/protocols"
)

// Pub/sub. SUBSCRIBE, PSUBSCRIBE and SSUBSCRIBE make the client's
// connection a stream (protocols.Stream): a connection of its own to the
// upstream the command routes to (SSUBSCRIBE: its shard channel's slot),
// every frame of which is relayed as it comes. A RESP2 client is then in
// subscriber mode, as with redis-server: only the (P|S)SUBSCRIBE and
// (P|S)UNSUBSCRIBE commands, PING, QUIT and RESET are allowed, and go on
// that connection; a RESP3 client's every command goes there, its
// messages coming as push frames. The stream ends when the upstream says
// no subscription is left (StreamWatch) or the client sends RESET; the
// connection is then reset before another client uses it.

var hello3Frame = AppendCommand(nil, []byte("HELLO"), []byte("3"))

// subscribed intercepts req on a subscribed connection: done is false
// for a request that takes the usual way (any but a transaction for a
// RESP3 client).
func (s *session) subscribed(dst []byte, req *protocols.Message) (_ []byte, _ protocols.Verdict, done bool) {
	cmd, known := CommandOf(req)
	switch {
	case !known:
		return dst, 0, false
	case cmd.Name == "reset":
		out, _ := s.c.Local(dst, &s.s, req)
		s.sub, s.aborted = false, false
		return out, protocols.Abandon, true
	case cmd.Name == "quit":
		return dst, 0, false
	case cmd.Name == "ping" || (cmd.Class == ClassPubSub && cmd.Name != "monitor"):
		if !cmd.ArityOK(req.Marks[markArgc]) {
			return appendArityError(dst, cmd.Name), protocols.Answer, true
		}
		return dst, protocols.Forward, true // on the stream
	case cmd.Class == ClassTransaction:
		return AppendError(dst, "transactions on a subscribed connection are not supported"), protocols.Answer, true
	case s.s.Protocol != 3:
		return append(dst, "-ERR Can't execute '"+cmd.Name+"': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"...), protocols.Answer, true
	}
	return dst, 0, false
}

// pubsub handles a pub/sub command on a connection that subscribes to
// nothing: a subscribe starts the stream; an unsubscribe is answered
// here, as redis-server answers it (nothing to leave, count 0).
func (s *session) pubsub(dst []byte, cmd Command, req *protocols.Message) ([]byte, protocols.Verdict) {
	if s.tx != txNone {
		return AppendError(dst, "pub/sub inside a transaction is not supported"), protocols.Answer
	}
	switch cmd.Name {
	case "subscribe", "psubscribe", "ssubscribe":
		s.sub, s.hello3 = true, s.s.Protocol == 3
		return dst, protocols.Stream
	}
	args, err := Args(nil, req.Raw)
	if err != nil {
		return AppendError(dst, "request not decoded by the redis codec"), protocols.Answer
	}
	t := byte('*')
	if s.s.Protocol == 3 {
		t = '>'
	}
	if len(args) == 1 {
		dst = appendLen(dst, t, 3)
		dst = appendNull(appendBulk(dst, []byte(cmd.Name)), &s.s)
		return appendLen(dst, ':', 0), protocols.Answer
	}
	for _, ch := range args[1:] {
		dst = appendLen(dst, t, 3)
		dst = appendBulk(appendBulk(dst, []byte(cmd.Name)), ch)
		dst = appendLen(dst, ':', 0)
	}
	return dst, protocols.Answer
}

// StreamEnded leaves subscriber mode (protocols.StreamSession).
func (s *session) StreamEnded() { s.sub = false }

// NewStreamWatch returns what follows one subscribed connection's frames
// (protocols.Streamer).
func (c *Codec) NewStreamWatch() protocols.StreamWatch { return &subscriptions{} }

// subscriptions follows the subscription counts a subscribed connection's
// confirmations carry: channels and patterns together, shard channels
// apart, as redis-server counts them. The connection leaves subscriber
// mode when both are 0.
type subscriptions struct {
	channels, shard int64
}

// Ended reads frame as a (un)subscribe confirmation (RESP2 array or RESP3
// push of three: kind, channel, count) and reports whether no
// subscription is left. Messages and other replies leave the counts.
func (w *subscriptions) Ended(frame *protocols.Message) bool {
	b := frame.Raw
	if len(b) < 16 || (b[0] != '*' && b[0] != '>') || !bytes.HasPrefix(b[1:], []byte("3\r\n$")) {
		return false
	}
	n, pos, err := parseInt(b, 5)
	if err != nil || n < 9 || n > 12 || int64(len(b)-pos) < n+2 {
		return false
	}
	kind := string(b[pos : pos+int(n)])
	pos += int(n) + 2
	switch kind {
	case "subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ssubscribe", "sunsubscribe":
	default:
		return false
	}
	skip, _, _, err := skipReply(b[pos:], len(b)-pos)
	if err != nil || pos+skip >= len(b) || b[pos+skip] != ':' {
		return false
	}
	count, _, err := parseInt(b, pos+skip+1)
	if err != nil {
		return false
	}
	if kind == "ssubscribe" || kind == "sunsubscribe" {
		w.shard = count
	} else {
		w.channels = count
	}
	return w.channels == 0 && w.shard == 0
}

var (
	_ protocols.Streamer      = (*Codec)(nil)
	_ protocols.StreamSession = (*session)(nil)
)
