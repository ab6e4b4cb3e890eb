package redis

import (
	"bytes"
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// MaxDepth bounds the nesting of aggregate replies (arrays, maps, sets,
// pushes, attributes). Redis itself nests a few levels; a Lua script can
// return deeper tables, which redis-server cuts at a few hundred levels
// too.
const MaxDepth = 512

// Response statuses (Message.Status of a reply): what an error reply says
// about the server that sent it (Classify reads them).
const (
	// StatusOK is any reply that is not an error.
	StatusOK = 0
	// StatusError is an error about the command (ERR, WRONGTYPE,
	// NOSCRIPT…): the server is fine.
	StatusError = 1
	// StatusUnavailable is an error meaning the server can't serve now
	// and did not run the command (LOADING, BUSY, MASTERDOWN, TRYAGAIN,
	// READONLY): another host may.
	StatusUnavailable = 2
	// StatusServerError is an error meaning the server is failing (OOM,
	// MISCONF: out of memory, can't persist).
	StatusServerError = 3
)

// frame is one aggregate being walked: elements still to read, and
// whether it is an attribute (which doesn't count as a value).
type frame struct {
	left int64
	attr bool
}

// stackSize is the nesting walked without allocating.
const stackSize = 16

// DecodeResponse decodes the first reply in buf (a frame from
// redis-server): any RESP2 or RESP3 type, aggregates nested up to
// MaxDepth, an attribute framed with the reply it precedes. Error replies
// ('-', '!') are KindError with a Status; a RESP3 push ('>'), which
// answers no command, is KindHeartbeatReply so the proxy consumes it
// without pairing it with a request.
func (c *Codec) DecodeResponse(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	n, top, topAt, err := skipReply(buf, c.max)
	if err == errShort {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	msg.Raw = buf[:n:n]
	switch top {
	case '-', '!':
		msg.Kind, msg.Status = protocols.KindError, errorStatus(buf, topAt)
	case '>':
		msg.Kind = protocols.KindHeartbeatReply
	default:
		msg.Kind = protocols.KindResponse
	}
	return n, nil
}

// skipReply walks the whole reply at buf[0] and returns its length, the
// type byte of its value (attributes skipped) and where that value starts.
// Nothing past limit bytes is read.
func skipReply(buf []byte, limit int) (n int, top byte, topAt int, err error) {
	var small [stackSize]frame
	stack := small[:0]
	pos := 0
	for {
		if pos >= len(buf) {
			return 0, 0, 0, errShort
		}
		t := buf[pos]
		if len(stack) == 0 && t != '|' && top == 0 {
			top, topAt = t, pos
		}
		next, count, err := skipHeader(buf, pos, limit)
		if err != nil {
			return 0, 0, 0, err
		}
		pos = next
		if pos > limit {
			return 0, 0, 0, fmt.Errorf("redis: reply exceeds the %d-byte frame limit", limit)
		}
		if count > 0 {
			if len(stack) == MaxDepth {
				return 0, 0, 0, fmt.Errorf("redis: reply nested deeper than %d", MaxDepth)
			}
			stack = append(stack, frame{left: count, attr: t == '|'})
			continue
		}
		// A value (or an empty attribute) is complete: close what it
		// completes.
		done := t != '|'
		for done && len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.left--; f.left > 0 {
				done = false
				break
			}
			stack = stack[:len(stack)-1]
			done = !f.attr
		}
		if done && len(stack) == 0 {
			return pos, top, topAt, nil
		}
	}
}

// skipHeader reads the type byte and line of the value at buf[pos] (and a
// blob's bytes) and returns the position after them and, for a non-empty
// aggregate, how many values it holds.
func skipHeader(buf []byte, pos, limit int) (int, int64, error) {
	t := buf[pos]
	switch t {
	case '+', '-':
		end, err := lineEnd(buf, pos+1, limit)
		return end, 0, err
	case ':':
		_, end, err := parseInt(buf, pos+1)
		return end, 0, typed(err, "integer")
	case '(':
		end, err := lineEnd(buf, pos+1, limit)
		if err == nil && !isBigNumber(buf[pos+1:end-2]) {
			err = fmt.Errorf("redis: big number %q is not an integer", clip(buf[pos+1:end-2], 40))
		}
		return end, 0, err
	case ',':
		end, err := lineEnd(buf, pos+1, limit)
		if err == nil && !isDouble(buf[pos+1:end-2]) {
			err = fmt.Errorf("redis: double %q is not a number", clip(buf[pos+1:end-2], 40))
		}
		return end, 0, err
	case '#':
		if pos+4 > len(buf) {
			return 0, 0, shortOr(buf[pos+1:], "t\r\n", "f\r\n")
		}
		if (buf[pos+1] != 't' && buf[pos+1] != 'f') || buf[pos+2] != '\r' || buf[pos+3] != '\n' {
			return 0, 0, fmt.Errorf("redis: boolean %q is not #t or #f", buf[pos:pos+4])
		}
		return pos + 4, 0, nil
	case '_':
		end, err := crlf(buf, pos+1)
		return end, 0, typed(err, "null")
	case '$', '!', '=':
		return skipBlob(buf, pos, limit)
	case '*', '%', '~', '>', '|':
		n, end, err := parseInt(buf, pos+1)
		if err != nil {
			return 0, 0, typed(err, "aggregate length")
		}
		if n == -1 && t == '*' {
			return end, 0, nil // RESP2 null array
		}
		if n < 0 {
			return 0, 0, fmt.Errorf("redis: %q aggregate length %d is negative", t, n)
		}
		if t == '%' || t == '|' {
			if n > int64(limit) {
				return 0, 0, fmt.Errorf("redis: %q aggregate of %d pairs exceeds the %d-byte frame limit", t, n, limit)
			}
			n *= 2 // key and value
		}
		// Every value takes at least 3 bytes: a count beyond what limit
		// leaves can never complete.
		if n > int64(limit-end)/3 {
			return 0, 0, fmt.Errorf("redis: %q aggregate of %d values exceeds the %d-byte frame limit", t, n, limit)
		}
		return end, n, nil
	}
	return 0, 0, fmt.Errorf("redis: unknown reply type %q", t)
}

// skipBlob skips a bulk string, blob error or verbatim string.
func skipBlob(buf []byte, pos, limit int) (int, int64, error) {
	t := buf[pos]
	n, next, err := parseInt(buf, pos+1)
	switch {
	case err != nil:
		return 0, 0, typed(err, "bulk length")
	case n == -1 && t == '$':
		return next, 0, nil // RESP2 null bulk string
	case n < 0:
		return 0, 0, fmt.Errorf("redis: %q length %d is negative", t, n)
	case n > int64(limit-next-2):
		return 0, 0, fmt.Errorf("redis: %q string of %d bytes exceeds the %d-byte frame limit", t, n, limit)
	case t == '=' && n < 4:
		return 0, 0, fmt.Errorf("redis: verbatim string of %d bytes has no format", n)
	}
	end := next + int(n)
	if t == '=' && end >= len(buf) {
		return 0, 0, errShort
	}
	if t == '=' && buf[next+3] != ':' {
		return 0, 0, fmt.Errorf("redis: verbatim string %q lacks its \"xxx:\" format", clip(buf[next:], 8))
	}
	after, err := crlf(buf, end)
	if err != nil && err != errShort {
		return 0, 0, fmt.Errorf("redis: after a %d-byte string: %v", n, err)
	}
	return after, 0, err
}

// lineEnd returns the position after the CRLF that ends the line at
// buf[pos:]. A line holds no CR or LF; one that passes limit is an error.
func lineEnd(buf []byte, pos, limitBytes int) (int, error) {
	limit := max(pos, min(len(buf), limitBytes))
	i := bytes.IndexByte(buf[pos:limit], '\r')
	if i < 0 {
		if j := bytes.IndexByte(buf[pos:limit], '\n'); j >= 0 {
			return 0, fmt.Errorf("redis: line feed without carriage return in %q", clip(buf[pos:], 40))
		}
		if limit == limitBytes {
			return 0, fmt.Errorf("redis: line longer than the %d-byte frame limit", limitBytes)
		}
		return 0, errShort
	}
	end := pos + i
	if j := bytes.IndexByte(buf[pos:end], '\n'); j >= 0 {
		return 0, fmt.Errorf("redis: line feed without carriage return in %q", clip(buf[pos:], 40))
	}
	next, err := crlf(buf, end)
	return next, typed(err, "line")
}

// typed names what a parseInt error was reading.
func typed(err error, what string) error {
	if err == nil || err == errShort {
		return err
	}
	return fmt.Errorf("redis: %s: %v", what, err)
}

// shortOr returns errShort when have is a prefix of one of the wants,
// else an error.
func shortOr(have []byte, wants ...string) error {
	for _, w := range wants {
		if bytes.HasPrefix([]byte(w), have) {
			return errShort
		}
	}
	return fmt.Errorf("redis: bad value %q", have)
}

// isBigNumber reports whether b is an optional minus and digits.
func isBigNumber(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isDouble reports whether b is a RESP3 double: inf, -inf, nan, or a
// decimal number with an optional fraction and exponent.
func isDouble(b []byte) bool {
	switch string(b) {
	case "inf", "-inf", "nan", "-nan":
		return true
	}
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		b = b[1:]
	}
	digits, i := 0, 0
	for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		digits++
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			i++
		}
		start := i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
		}
		if i == start {
			return false
		}
	}
	return i == len(b)
}

// errorStatus classifies the error reply at buf[at] by its code, the
// first word of its message.
func errorStatus(buf []byte, at int) uint32 {
	var text []byte
	if buf[at] == '-' {
		text = buf[at+1:]
	} else if _, next, err := parseInt(buf, at+1); err == nil {
		text = buf[next:]
	}
	code := text[:min(len(text), 12)]
	if i := bytes.IndexAny(code, " \r"); i >= 0 {
		code = code[:i]
	}
	switch string(code) {
	case "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "READONLY":
		return StatusUnavailable
	case "OOM", "MISCONF":
		return StatusServerError
	}
	return StatusError
}

// Classify tells a reply's class by its Status: LOADING, BUSY,
// MASTERDOWN, TRYAGAIN and READONLY are unavailable (the command did not
// run; another host may take it), OOM and MISCONF server errors; every
// other error (ERR, WRONGTYPE, NOSCRIPT, EXECABORT…) is about the command
// and says nothing against the server.
func (c *Codec) Classify(resp *protocols.Message) protocols.ResponseClass {
	if resp.Kind != protocols.KindError {
		return protocols.ClassOK
	}
	switch resp.Status {
	case StatusUnavailable:
		return protocols.ClassUnavailable
	case StatusServerError:
		return protocols.ClassServerError
	}
	return protocols.ClassOK
}

var (
	_ protocols.ResponseDecoder    = (*Codec)(nil)
	_ protocols.ResponseClassifier = (*Codec)(nil)
)
