package redis

import (
	"fmt"
	"strconv"
)

// AppendCommand appends a request made of args (name first) to dst, as a
// multibulk.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = appendLen(dst, '*', len(args))
	for _, a := range args {
		dst = appendBulk(dst, a)
	}
	return dst
}

// appendLen appends a type byte, a length and CRLF.
func appendLen(dst []byte, t byte, n int) []byte {
	dst = append(dst, t)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// appendBulk appends b as a bulk string.
func appendBulk(dst, b []byte) []byte {
	dst = appendLen(dst, '$', len(b))
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendPart appends one part of a split command: the command name
// (args[0]) and, for each key position in keys (from KeyPositions, in
// order), the key and the arguments that go with it (MSET's value).
// Positions past args are skipped; check ArityOK first.
func (c *Command) AppendPart(dst []byte, args [][]byte, keys []int) []byte {
	step := max(c.Keys.Step, 1)
	argc := 1
	for _, k := range keys {
		if k > 0 && k+step <= len(args) {
			argc += step
		}
	}
	dst = appendLen(dst, '*', argc)
	dst = appendBulk(dst, args[0])
	for _, k := range keys {
		if k > 0 && k+step <= len(args) {
			for _, a := range args[k : k+step] {
				dst = appendBulk(dst, a)
			}
		}
	}
	return dst
}

// MergeReplies merges the replies to the parts of a split command into
// the command's reply, as its Merge says: replies[i] is the reply frame
// to part i, owner[k] the part that carried the k-th key (MergeArray
// needs it). See MergeIntegers, MergeArray and MergeOK.
func (c *Command) MergeReplies(dst []byte, replies [][]byte, owner []int) ([]byte, error) {
	switch c.Merge {
	case MergeSum:
		return MergeIntegers(dst, replies)
	case MergeKeyOrder:
		return MergeArray(dst, replies, owner)
	case MergeAllOK:
		return MergeOK(dst, replies)
	}
	return dst, fmt.Errorf("redis: merge: %s is not a split command", c.Name)
}

// MergeIntegers appends the sum of integer replies (DEL, EXISTS, UNLINK,
// TOUCH) or, if a part failed, the first error reply. Any other reply is
// an error.
func MergeIntegers(dst []byte, replies [][]byte) ([]byte, error) {
	if e, ok := firstError(replies); ok {
		return append(dst, e...), nil
	}
	var sum int64
	for i, r := range replies {
		v, err := valueOf(r)
		if err != nil {
			return dst, fmt.Errorf("redis: merge: part %d: %v", i, err)
		}
		if len(v) == 0 || v[0] != ':' {
			return dst, fmt.Errorf("redis: merge: part %d: want an integer reply, got %q", i, clip(v, 16))
		}
		n, _, err := parseInt(v, 1)
		if err != nil {
			return dst, fmt.Errorf("redis: merge: part %d: %v", i, err)
		}
		sum += n
	}
	return appendLen(dst, ':', int(sum)), nil
}

// MergeOK appends +OK when every part replied +OK (MSET) or, if a part
// failed, the first error reply. Any other reply is an error.
func MergeOK(dst []byte, replies [][]byte) ([]byte, error) {
	if e, ok := firstError(replies); ok {
		return append(dst, e...), nil
	}
	for i, r := range replies {
		v, err := valueOf(r)
		if err != nil {
			return dst, fmt.Errorf("redis: merge: part %d: %v", i, err)
		}
		if string(v) != "+OK\r\n" {
			return dst, fmt.Errorf("redis: merge: part %d: want +OK, got %q", i, clip(v, 16))
		}
	}
	return append(dst, "+OK\r\n"...), nil
}

// MergeArray appends the array of the elements of array replies (MGET)
// in key order: the k-th element is the next unused element of
// replies[owner[k]]. If a part failed, the first error reply is appended
// instead. Parts with more or fewer elements than keys are an error.
func MergeArray(dst []byte, replies [][]byte, owner []int) ([]byte, error) {
	if e, ok := firstError(replies); ok {
		return append(dst, e...), nil
	}
	type cursor struct {
		rest []byte
		left int64
	}
	parts := make([]cursor, len(replies))
	for i, r := range replies {
		v, err := valueOf(r)
		if err != nil {
			return dst, fmt.Errorf("redis: merge: part %d: %v", i, err)
		}
		if len(v) == 0 || v[0] != '*' {
			return dst, fmt.Errorf("redis: merge: part %d: want an array reply, got %q", i, clip(v, 16))
		}
		n, next, err := parseInt(v, 1)
		if err != nil || n < 0 {
			return dst, fmt.Errorf("redis: merge: part %d: bad array length", i)
		}
		parts[i] = cursor{v[next:], n}
	}
	dst = appendLen(dst, '*', len(owner))
	for k, p := range owner {
		if p < 0 || p >= len(parts) || parts[p].left == 0 {
			return dst, fmt.Errorf("redis: merge: key %d: part %d has no element left", k, p)
		}
		n, _, _, err := skipReply(parts[p].rest, len(parts[p].rest))
		if err != nil {
			return dst, fmt.Errorf("redis: merge: part %d: %v", p, err)
		}
		dst = append(dst, parts[p].rest[:n]...)
		parts[p].rest, parts[p].left = parts[p].rest[n:], parts[p].left-1
	}
	for i, p := range parts {
		if p.left != 0 {
			return dst, fmt.Errorf("redis: merge: part %d: %d elements left over", i, p.left)
		}
	}
	return dst, nil
}

// firstError returns the first error reply ('-' or '!', after any
// attribute) among replies.
func firstError(replies [][]byte) ([]byte, bool) {
	for _, r := range replies {
		if v, err := valueOf(r); err == nil && len(v) > 0 && (v[0] == '-' || v[0] == '!') {
			return v, true
		}
	}
	return nil, false
}

// valueOf returns the value of one whole reply frame, without the
// attributes before it.
func valueOf(reply []byte) ([]byte, error) {
	n, _, at, err := skipReply(reply, len(reply))
	if err != nil {
		return nil, err
	}
	if n != len(reply) {
		return nil, fmt.Errorf("%d bytes after the reply", len(reply)-n)
	}
	return reply[at:], nil
}
