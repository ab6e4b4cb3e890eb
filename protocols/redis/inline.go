package redis

import (
	"errors"
	"fmt"
)

var errUnbalanced = errors.New("redis: inline command: unbalanced quotes")

// isSpace is C's isspace, which redis-server uses between arguments.
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}

func unhex(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

// splitInline appends the arguments of an inline command line (without
// its line end) to dst, read as redis-server reads them, so the proxy
// routes on the key the server will see:
//   - arguments are separated by runs of spaces (space, \t, \r, \n, \v,
//     \f between arguments; space, \t, \r, \n end an unquoted one);
//   - "double quotes" take the escapes \n \r \t \b \a \xHH and \<any>
//     for that character; 'single quotes' take \' only;
//   - a quote may open inside an argument (a"b c" is `ab c`), but a
//     closing quote must be followed by a space or the end of the line.
//
// A NUL byte is an error: redis-server reads the line as a C string and
// would not see the rest of it. An argument without quotes aliases line.
func splitInline(dst [][]byte, line []byte) ([][]byte, error) {
	for i, b := range line {
		if b == 0 {
			return dst, fmt.Errorf("redis: inline command: NUL byte at %d", i)
		}
	}
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return dst, nil
		}
		start := i
		for i < len(line) && !endsPlain(line[i]) && line[i] != '"' && line[i] != '\'' {
			i++
		}
		if i == len(line) || endsPlain(line[i]) {
			dst = append(dst, line[start:i:i])
			continue
		}
		// A quote: build the argument in its own buffer.
		arg := append([]byte(nil), line[start:i]...)
		var err error
		if arg, i, err = quotedArg(arg, line, i); err != nil {
			return dst, err
		}
		dst = append(dst, arg)
	}
}

// endsPlain reports whether b ends an unquoted argument.
func endsPlain(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

// quotedArg continues the argument arg at line[i], where a quote opens,
// to its end, returning it and the position after it.
func quotedArg(arg, line []byte, i int) ([]byte, int, error) {
	for i < len(line) && !endsPlain(line[i]) {
		switch q := line[i]; q {
		case '"', '\'':
			i++
			for {
				if i == len(line) {
					return nil, 0, errUnbalanced
				}
				b := line[i]
				if b == q {
					i++
					if i < len(line) && !isSpace(line[i]) {
						return nil, 0, fmt.Errorf("redis: inline command: closing quote must be followed by a space")
					}
					return arg, i, nil
				}
				if b == '\\' && i+1 < len(line) {
					if q == '\'' {
						if line[i+1] == '\'' {
							b, i = '\'', i+1
						}
					} else {
						b, i = unescape(line, i)
					}
				}
				arg = append(arg, b)
				i++
			}
		default:
			arg = append(arg, q)
			i++
		}
	}
	return arg, i, nil
}

// unescape reads the escape at line[i] ('\\') inside double quotes and
// returns its byte and the position of its last byte.
func unescape(line []byte, i int) (byte, int) {
	if line[i+1] == 'x' && i+3 < len(line) {
		hi, ok1 := unhex(line[i+2])
		lo, ok2 := unhex(line[i+3])
		if ok1 && ok2 {
			return hi<<4 | lo, i + 3
		}
	}
	switch c := line[i+1]; c {
	case 'n':
		return '\n', i + 1
	case 'r':
		return '\r', i + 1
	case 't':
		return '\t', i + 1
	case 'b':
		return '\b', i + 1
	case 'a':
		return '\a', i + 1
	default:
		return c, i + 1
	}
}
