package redis

import (
	"errors"
	"fmt"
)

// errShort says buf ends before the frame does: wait for more bytes.
var errShort = errors.New("redis: short frame")

// maxDigits bounds the digits of a RESP integer (int64 has 19).
const maxDigits = 19

// parseInt reads the decimal integer line at buf[pos:] (after its type
// byte) through its CRLF and returns the value and the position after the
// CRLF. Like redis-server it refuses a '+' sign, leading zeros, and
// anything but digits; what names the line is the caller's.
func parseInt(buf []byte, pos int) (int64, int, error) {
	i := pos
	neg := i < len(buf) && buf[i] == '-'
	if neg {
		i++
	}
	start := i
	var u uint64
	for ; i < len(buf) && '0' <= buf[i] && buf[i] <= '9'; i++ {
		if i-start == maxDigits {
			return 0, 0, errors.New("too many digits")
		}
		u = u*10 + uint64(buf[i]-'0')
	}
	if i == len(buf) {
		return 0, 0, errShort
	}
	switch {
	case i == start:
		return 0, 0, fmt.Errorf("%q is not a number", clip(buf[pos:], 24))
	case buf[start] == '0' && i-start > 1:
		return 0, 0, fmt.Errorf("%q has leading zeros", buf[pos:i])
	case u > 1<<63-1 && !(neg && u == 1<<63):
		return 0, 0, fmt.Errorf("%s overflows a 64-bit integer", buf[pos:i])
	}
	next, err := crlf(buf, i)
	if err != nil {
		return 0, 0, err
	}
	if neg {
		return -int64(u), next, nil
	}
	return int64(u), next, nil
}

// crlf checks that buf[i:] starts with CRLF and returns i+2.
func crlf(buf []byte, i int) (int, error) {
	if i+2 > len(buf) {
		if i < len(buf) && buf[i] != '\r' {
			return 0, fmt.Errorf("want CRLF, got %q", buf[i:])
		}
		return 0, errShort
	}
	if buf[i] != '\r' || buf[i+1] != '\n' {
		return 0, fmt.Errorf("want CRLF, got %q", buf[i:i+2])
	}
	return i + 2, nil
}

// clip shortens b for an error message.
func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
