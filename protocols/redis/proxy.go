package redis

import (
	"github.com/metamesh/metamesh/protocols"
)

// The proxy side of the codec: a session per client connection
// (protocols.SessionCodec) that answers connection commands, refuses what
// can't be proxied and pins a client's own upstream connection for
// transactions and blocking commands; and the splitting of multi-key
// commands (protocols.Splitter).

// NewSession returns the state of a new client connection.
func (c *Codec) NewSession() protocols.Session { return &session{c: c} }

// txState is where a client is in a transaction.
type txState uint8

const (
	txNone     txState = iota
	txWatching         // WATCH sent on the client's own connection
	txQueued           // MULTI acknowledged by the proxy, nothing sent yet
	txPinned           // MULTI sent on the client's own connection
)

type session struct {
	c        *Codec
	s        Session
	tx       txState
	preamble bool // the next pin must send MULTI first
	// aborted: a command of the transaction (MULTI to EXEC) was refused
	// by the proxy, or the connection it was queued on is gone, so EXEC
	// discards the transaction (-EXECABORT), as redis-server does after
	// refusing a command while queuing; until then later commands are
	// only acknowledged (+QUEUED). Set in txNone, it is a watch that was
	// lost with its connection: the next transaction fails.
	aborted bool
	pinning bool // the last verdict was Pin
	// sub: the client subscribes (pubsub.go); hello3: the stream it
	// starts must speak RESP3 (the preamble's HELLO 3).
	sub, hello3 bool
	// upstream is the codec of the connections the session's commands
	// use: the variant of its database (Variant); db is that database.
	upstream protocols.Codec
	db       int
}

// UpstreamCodec returns the codec whose upstream connections serve the
// client's database: the codec itself for database 0, else its variant
// that sends SELECT n on every new connection (protocols.UpstreamVariant).
func (s *session) UpstreamCodec() protocols.Codec {
	if s.upstream == nil || s.db != s.s.DB {
		s.db = s.s.DB
		s.upstream = s.c.Variant(false, s.db)
	}
	return s.upstream
}

var (
	multiFrame = AppendCommand(nil, []byte("MULTI"))
	okReply    = []byte("+OK\r\n")
	execAbort  = []byte("-EXECABORT Transaction discarded because of previous errors.\r\n")
)

// Intercept answers what the proxy answers itself and says how the rest
// travels: on the shared pipeline, or on the client's own connection.
func (s *session) Intercept(dst []byte, req *protocols.Message) ([]byte, protocols.Verdict) {
	out, v := s.intercept(dst, req)
	s.pinning = v == protocols.Pin
	return out, v
}

func (s *session) intercept(dst []byte, req *protocols.Message) ([]byte, protocols.Verdict) {
	if s.sub {
		if out, v, done := s.subscribed(dst, req); done {
			return out, v
		}
	}
	inTx := s.tx == txQueued || s.tx == txPinned
	out, act := s.c.Local(dst, &s.s, req)
	cmd, _ := CommandOf(req)
	if act == Replied && inTx && (cmd.Name == "ping" || cmd.Name == "echo") && !isError(out[len(dst):]) {
		// Inside MULTI, redis-server queues it and answers it in EXEC's
		// reply: the proxy must not answer it now.
		out, act = dst, Forward
	}
	switch act {
	case Replied:
		if inTx && isError(out[len(dst):]) {
			s.aborted = true
		}
		return out, protocols.Answer
	case ReplyAndClose:
		return out, protocols.Close
	}
	switch {
	case cmd.Class == ClassTransaction:
		return s.transaction(dst, cmd.Name)
	case cmd.Class == ClassPubSub:
		return s.pubsub(dst, cmd, req)
	case inTx && s.aborted:
		// EXEC will discard it all: nothing more goes upstream.
		return append(dst, "+QUEUED\r\n"...), protocols.Answer
	case s.tx == txQueued:
		// The first command of the transaction picks the upstream, by
		// its key: MULTI goes there first.
		s.tx, s.preamble = txPinned, true
		return dst, protocols.Pin
	case cmd.Class == ClassBlocking && s.tx == txNone:
		// A connection of its own for as long as it blocks.
		return dst, protocols.Once
	}
	return dst, protocols.Forward
}

// transaction handles MULTI, EXEC, DISCARD, WATCH and UNWATCH. A client's
// transaction runs on a connection of its own to the upstream its first
// keyed command (or WATCH) routes to; every command until EXEC or
// DISCARD goes there, whatever its key.
func (s *session) transaction(dst []byte, name string) ([]byte, protocols.Verdict) {
	switch name {
	case "multi":
		switch s.tx {
		case txNone:
			s.tx = txQueued
			return append(dst, okReply...), protocols.Answer
		case txWatching:
			s.tx = txPinned
			return dst, protocols.Forward
		}
		return append(dst, "-ERR MULTI calls can not be nested\r\n"...), protocols.Answer
	case "watch":
		switch s.tx {
		case txNone:
			s.tx, s.aborted = txWatching, false
			return dst, protocols.Pin
		case txWatching:
			return dst, protocols.Forward
		}
		return append(dst, "-ERR WATCH inside MULTI is not allowed\r\n"...), protocols.Answer
	case "exec", "discard":
		aborted := s.aborted
		switch s.tx {
		case txQueued: // nothing was queued: nothing to send
			s.tx, s.aborted = txNone, false
			switch {
			case name == "discard":
				return append(dst, okReply...), protocols.Answer
			case aborted:
				return append(dst, execAbort...), protocols.Answer
			}
			return append(dst, "*0\r\n"...), protocols.Answer
		case txPinned:
			s.tx, s.aborted = txNone, false
			switch {
			case !aborted:
				return dst, protocols.Unpin
			case name == "discard":
				return append(dst, okReply...), protocols.Abandon
			}
			return append(dst, execAbort...), protocols.Abandon
		}
		return append(dst, "-ERR "+upper(name)+" without MULTI\r\n"...), protocols.Answer
	case "unwatch":
		if s.tx == txNone {
			s.aborted = false
		}
		switch s.tx {
		case txWatching:
			s.tx = txNone
			return dst, protocols.Unpin
		case txPinned:
			return dst, protocols.Forward
		}
		return append(dst, okReply...), protocols.Answer
	}
	return AppendError(dst, "transaction command '"+name+"' is not supported"), protocols.Answer
}

// Refused fails the transaction a request the proxy refused was part of.
// A refused request that was to pin the client's connection left nothing
// upstream: a WATCH that was refused watches nothing, and a transaction
// whose first command was refused is still only queued in the proxy. A
// watch whose connection is gone fails the next transaction.
func (s *session) Refused(pinned bool) {
	switch {
	case !pinned && s.sub:
		s.sub, s.hello3 = false, false // the subscribe that was to start the stream
	case !pinned && s.pinning && s.tx == txWatching:
		s.tx = txNone
	case !pinned && s.pinning && s.tx == txPinned:
		s.tx, s.preamble, s.aborted = txQueued, false, true
	case !pinned && s.tx == txWatching:
		s.tx, s.aborted = txNone, true
	case s.tx == txQueued || s.tx == txPinned:
		s.aborted = true
	}
}

// isError reports whether reply is a RESP error.
func isError(reply []byte) bool { return len(reply) > 0 && reply[0] == '-' }

// Preamble returns the MULTI the proxy acknowledged, to send first on the
// connection the transaction was just pinned to, or the HELLO 3 of a
// RESP3 client's subscribed connection.
func (s *session) Preamble() []protocols.Message {
	frame := multiFrame
	switch {
	case s.hello3:
		s.hello3, frame = false, hello3Frame
	case !s.preamble:
		return nil
	}
	s.preamble = false
	var m protocols.Message
	if _, err := s.c.Decode(frame, &m); err != nil {
		panic(err) // a constant frame of our own
	}
	return []protocols.Message{m}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Split makes one request per key of a split command (MGET, MSET, DEL,
// EXISTS, UNLINK, TOUCH) with more than one key, so each key is routed on
// its own (as Envoy's redis proxy does); other requests stay whole.
func (c *Codec) Split(parts []protocols.Message, req *protocols.Message) []protocols.Message {
	cmd, ok := CommandOf(req)
	if !ok || cmd.Class != ClassSplit {
		return parts
	}
	args, err := Args(nil, req.Raw)
	if err != nil || !cmd.ArityOK(len(args)) {
		return parts
	}
	keys := cmd.KeyPositions(nil, args)
	if len(keys) < 2 {
		return parts
	}
	for _, k := range keys {
		frame := cmd.AppendPart(nil, args, []int{k})
		parts = append(parts, protocols.Message{})
		if _, err := c.Decode(frame, &parts[len(parts)-1]); err != nil {
			panic(err) // a part is a well-formed frame we just built
		}
	}
	return parts
}

// Merge makes a split command's reply from its parts' (one key each).
func (c *Codec) Merge(dst []byte, req *protocols.Message, replies [][]byte) []byte {
	cmd, _ := CommandOf(req)
	owner := make([]int, len(replies))
	for i := range owner {
		owner[i] = i
	}
	out, err := cmd.MergeReplies(dst, replies, owner)
	if err != nil {
		return AppendError(dst, cmd.Name+": "+err.Error())
	}
	return out
}

var (
	_ protocols.SessionCodec    = (*Codec)(nil)
	_ protocols.Splitter        = (*Codec)(nil)
	_ protocols.Preambler       = (*session)(nil)
	_ protocols.UpstreamVariant = (*session)(nil)
)
