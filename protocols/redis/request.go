package redis

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/metamesh/metamesh/protocols"
)

// Marks on a decoded request.
const (
	markCmd      = iota // position in the command table + 1; 0: not in it
	markArgc            // arguments, the name included
	markForm            // formMultibulk or formInline
	markBlocking        // 1: XREAD or XREADGROUP with BLOCK
)

// Request forms.
const (
	formMultibulk = 1
	formInline    = 2
)

// MaxInlineBytes bounds an inline command line, as in redis-server.
const MaxInlineBytes = 64 << 10

// spanCount is how many argument positions Decode keeps while walking a
// multibulk; later arguments (rare key positions) are found by walking
// again.
const spanCount = 16

// span is one bulk string's bytes in a frame.
type span struct{ off, n int }

// Decode decodes the first request in buf: a multibulk (an array of bulk
// strings, what every client library sends, RESP2 or RESP3) or an inline
// command line. Blank lines and empty multibulks before it are skipped, as
// redis-server does, and counted in the length returned; they are kept
// (as part of the next frame) for at most MaxInlineBytes.
func (c *Codec) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	skipped := 0
	for skipped < len(buf) {
		var n int
		var err error
		if buf[skipped] == '*' {
			n, err = c.decodeMultibulk(buf[skipped:], msg)
		} else {
			n, err = c.decodeInline(buf[skipped:], msg)
		}
		if err != nil || n == 0 {
			msg.Reset()
			if err == nil && skipped > MaxInlineBytes {
				err = fmt.Errorf("redis: %d bytes of blank lines and empty commands", skipped)
			}
			return 0, err
		}
		if msg.Raw != nil {
			return skipped + n, nil
		}
		skipped += n
	}
	if skipped > MaxInlineBytes {
		return 0, fmt.Errorf("redis: %d bytes of blank lines and empty commands", skipped)
	}
	return 0, nil
}

// decodeMultibulk decodes a multibulk at buf[0] ('*'). It returns the
// bytes of an empty one (*0, *-1) with msg.Raw left nil.
func (c *Codec) decodeMultibulk(buf []byte, msg *protocols.Message) (int, error) {
	argc64, pos, err := parseInt(buf, 1)
	switch {
	case err == errShort:
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("redis: multibulk length: %v", err)
	case argc64 == 0 || argc64 == -1:
		return pos, nil
	case argc64 < 0:
		return 0, fmt.Errorf("redis: multibulk length %d is negative", argc64)
	case argc64 > int64(c.maxArgs):
		return 0, fmt.Errorf("redis: multibulk of %d arguments exceeds limit %d", argc64, c.maxArgs)
	}
	argc := int(argc64)
	var spans [spanCount]span
	for i := range argc {
		if pos >= len(buf) {
			return 0, nil
		}
		if buf[pos] != '$' {
			return 0, fmt.Errorf("redis: argument %d: want '$', got %q", i, buf[pos])
		}
		n, next, err := parseInt(buf, pos+1)
		switch {
		case err == errShort:
			return 0, nil
		case err != nil:
			return 0, fmt.Errorf("redis: argument %d: bulk length: %v", i, err)
		case n < 0:
			return 0, fmt.Errorf("redis: argument %d: bulk length %d is negative", i, n)
		case n > int64(c.max-next-2):
			return 0, fmt.Errorf("redis: argument %d: bulk of %d bytes exceeds the %d-byte frame limit", i, n, c.max)
		}
		end := next + int(n)
		if i < spanCount {
			spans[i] = span{next, int(n)}
		}
		if pos, err = crlf(buf, end); err == errShort {
			return 0, nil
		} else if err != nil {
			return 0, fmt.Errorf("redis: argument %d: after its %d bytes: %v", i, n, err)
		}
	}
	frame := buf[:pos:pos]
	arg := func(i int) []byte {
		if i < spanCount {
			return frame[spans[i].off : spans[i].off+spans[i].n]
		}
		return multibulkArg(frame, i)
	}
	c.fill(msg, frame, formMultibulk, argc, arg)
	return pos, nil
}

// multibulkArg returns argument i of a whole, valid multibulk frame.
func multibulkArg(frame []byte, i int) []byte {
	_, pos, _ := parseInt(frame, 1)
	for ; ; i-- {
		n, next, _ := parseInt(frame, pos+1)
		if i == 0 {
			return frame[next : next+int(n)]
		}
		pos = next + int(n) + 2
	}
}

// decodeInline decodes an inline command: a line of space-separated
// arguments, quoted as redis-server reads them (see splitInline). It
// returns the bytes of a blank line with msg.Raw left nil.
func (c *Codec) decodeInline(buf []byte, msg *protocols.Message) (int, error) {
	switch buf[0] {
	case '$', '+', '-', ':', '_', '#', ',', '(', '!', '=', '%', '~', '|', '>':
		return 0, fmt.Errorf("redis: a request can't start with %q (want '*' or an inline command)", buf[0])
	}
	nl := bytes.IndexByte(buf[:min(len(buf), MaxInlineBytes+1)], '\n')
	if nl < 0 {
		if len(buf) > MaxInlineBytes {
			return 0, fmt.Errorf("redis: inline command longer than %d bytes", MaxInlineBytes)
		}
		return 0, nil
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	args, err := splitInline(nil, line)
	if err != nil {
		return 0, err
	}
	if len(args) == 0 {
		return nl + 1, nil
	}
	if len(args) > c.maxArgs {
		return 0, fmt.Errorf("redis: inline command of %d arguments exceeds limit %d", len(args), c.maxArgs)
	}
	c.fill(msg, buf[:nl+1:nl+1], formInline, len(args), func(i int) []byte { return args[i] })
	return nl + 1, nil
}

// fill sets msg from a whole request of argc arguments read by arg.
func (c *Codec) fill(msg *protocols.Message, frame []byte, form, argc int, arg func(int) []byte) {
	msg.Kind, msg.Raw = protocols.KindRequest, frame
	i := lookup(arg(0))
	if i >= 0 && commands[i].container && argc > 1 {
		if j := lookupSub(commands[i].attr, arg(1)); j >= 0 {
			i = j
		}
	}
	readonly := "false"
	blocking := 0
	if i < 0 {
		msg.Headers.Add(AttrCommand, lowerString(arg(0)))
	} else {
		cmd := &commands[i]
		msg.Headers.Add(AttrCommand, cmd.attr)
		if p := firstKey(cmd, argc, arg); p > 0 {
			msg.Headers.Add(AttrKey, string(arg(p)))
		}
		if cmd.Readonly {
			readonly = "true"
		}
		if cmd.Keys.Streams && hasBlock(argc, arg) {
			blocking = 1
		}
	}
	msg.Headers.Add(AttrReadonly, readonly)
	msg.Marks = [protocols.MarkCount]int{markCmd: i + 1, markArgc: argc, markForm: form, markBlocking: blocking}
}

// maxUnknownName bounds the command attribute of a command not in the
// table.
const maxUnknownName = 64

// lowerString returns name in lower case, cut to maxUnknownName bytes.
func lowerString(name []byte) string {
	b := []byte(string(clip(name, maxUnknownName)))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// firstKey returns the position of cmd's first key in a request of argc
// arguments read by arg, or 0 when it has none.
func firstKey(cmd *Command, argc int, arg func(int) []byte) int {
	k := cmd.Keys
	if k.First > 0 {
		last := k.Last
		if last < 0 {
			last += argc
		}
		if k.First <= last && k.First < argc {
			return k.First
		}
	}
	if k.NumKeys > 0 && k.NumKeys < argc-1 {
		if n, err := strconv.Atoi(string(arg(k.NumKeys))); err == nil && n > 0 && n <= argc-k.NumKeys-1 {
			return k.NumKeys + 1
		}
	}
	if k.Streams {
		return streamsAt(argc, arg)
	}
	return 0
}

// CommandOf returns the command of req, a request decoded by this codec,
// and false when its name is not in the table (the proxy refuses it). An
// XREAD or XREADGROUP with BLOCK is returned with ClassBlocking.
func CommandOf(req *protocols.Message) (Command, bool) {
	i := req.Marks[markCmd] - 1
	if i < 0 || i >= len(commands) || req.Marks[markForm] == 0 {
		return Command{}, false
	}
	cmd := commands[i]
	if req.Marks[markBlocking] != 0 {
		cmd.Class = ClassBlocking
	}
	return cmd, true
}

// Args appends the arguments of req, a whole request frame (a decoded
// request's Raw), to dst, name first. Multibulk arguments alias req;
// inline ones may not. It fails on anything Decode would not accept as
// one request.
func Args(dst [][]byte, req []byte) ([][]byte, error) {
	if len(req) == 0 {
		return dst, fmt.Errorf("redis: empty request")
	}
	if req[0] != '*' {
		nl := bytes.IndexByte(req, '\n')
		if nl != len(req)-1 {
			return dst, fmt.Errorf("redis: not one inline command")
		}
		line := req[:nl]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		return splitInline(dst, line)
	}
	argc, pos, err := parseInt(req, 1)
	if err != nil || argc <= 0 || argc > int64(len(req)) {
		return dst, fmt.Errorf("redis: not a multibulk request")
	}
	for range argc {
		if pos >= len(req) || req[pos] != '$' {
			return dst, fmt.Errorf("redis: not a multibulk request")
		}
		n, next, err := parseInt(req, pos+1)
		if err != nil || n < 0 || n > int64(len(req)-next) {
			return dst, fmt.Errorf("redis: not a multibulk request")
		}
		end := next + int(n)
		dst = append(dst, req[next:end:end])
		if pos, err = crlf(req, end); err != nil {
			return dst, fmt.Errorf("redis: not a multibulk request")
		}
	}
	if pos != len(req) {
		return dst, fmt.Errorf("redis: %d bytes after the request", len(req)-pos)
	}
	return dst, nil
}
