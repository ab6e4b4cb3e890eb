package main

import (
	"errors"
	"math"
)

// requestTemplate is one request frame of a workload whose ID and the
// first bytes of whose argument (the tag) are patched for every request.
type requestTemplate struct {
	frame        []byte
	idOff, idLen int    // the big-endian request ID in frame
	maxID        uint64 // the largest ID idLen bytes hold
	tagOff       int    // offset of the tag in frame
	tagLen       int    // the tag is the low tagLen hex digits of the request ID
	filler       string // the rest of the argument, after the tag
}

func newRequestTemplate(w *workload, payload int) (*requestTemplate, error) {
	if w.idLen < 1 || w.idLen > 8 {
		return nil, errors.New("request template: the ID must be 1 to 8 bytes")
	}
	tagLen := min(16, payload)
	filler := make([]byte, payload-tagLen)
	for i := range filler {
		filler[i] = 'a' + byte(i%26)
	}
	build := func(tagChar byte) []byte {
		arg := make([]byte, 0, payload)
		for range tagLen {
			arg = append(arg, tagChar)
		}
		return w.request(string(append(arg, filler...)))
	}
	// The tag sits where two frames differing only in it differ.
	a, b := build('0'), build('1')
	t := &requestTemplate{
		frame: a, idOff: w.idOff, idLen: w.idLen, maxID: math.MaxUint64 >> (64 - 8*w.idLen),
		tagLen: tagLen, filler: string(filler),
	}
	if len(a) != len(b) {
		return nil, errors.New("request template: tag changes the frame length")
	}
	if t.idOff < 0 || t.idOff+t.idLen > len(a) {
		return nil, errors.New("request template: ID outside the frame")
	}
	t.tagOff = -1
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		if t.tagOff < 0 {
			t.tagOff = i
		}
		if i >= t.tagOff+tagLen {
			return nil, errors.New("request template: tag is not contiguous")
		}
	}
	if t.tagOff < 0 && tagLen > 0 {
		return nil, errors.New("request template: tag not found")
	}
	return t, nil
}

// appendRequest appends the request with ID id (at most maxID).
func (t *requestTemplate) appendRequest(dst []byte, id uint64) []byte {
	start := len(dst)
	dst = append(dst, t.frame...)
	putID(dst[start+t.idOff:start+t.idOff+t.idLen], id)
	if t.tagLen > 0 {
		putHex(dst[start+t.tagOff:start+t.tagOff+t.tagLen], id)
	}
	return dst
}

// checkArg reports whether arg is the argument of request id.
func (t *requestTemplate) checkArg(arg string, id uint64) bool {
	if len(arg) != t.tagLen+len(t.filler) || arg[t.tagLen:] != t.filler {
		return false
	}
	var tag [16]byte
	putHex(tag[:t.tagLen], id)
	return arg[:t.tagLen] == string(tag[:t.tagLen])
}

// putID writes id big-endian into b (its low len(b) bytes).
func putID(b []byte, id uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(id)
		id >>= 8
	}
}

// putHex writes the low len(b) hex digits of v into b.
func putHex(b []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
}
