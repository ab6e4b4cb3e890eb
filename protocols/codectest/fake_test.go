package codectest_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/metamesh/metamesh/protocols"
)

// tiny is a fake protocol for the kit's own tests. A frame is a 7-byte
// header (body length uint16, kind byte, request ID uint32, big endian)
// and a body of "key=value\n" lines, the headers. Its zero value is a good
// codec; each bug field breaks it in one way the kit must catch.
type tiny struct {
	alias      bool // header strings alias buf
	eager      bool // a short buffer decodes as a (truncated) frame
	impatient  bool // a partial frame is an error
	fragile    bool // trusts the kind byte: garbage panics
	lostID     bool // error replies carry ID 0
	deafToSet  bool // Encode ignores set
	stretchesN bool // a frame's length counts one byte too many
}

const (
	tinyHeader = 7
	tinyMax    = 512
)

// kindNames has an entry per valid kind byte; fragile indexes it unchecked.
var kindNames = [...]string{"", "request", "oneway", "response", "error", "heartbeat", "heartbeat_reply"}

func (c *tiny) Model() protocols.Model { return protocols.Multiplexed }

func (c *tiny) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	if len(buf) < tinyHeader {
		return 0, nil
	}
	n := tinyHeader + int(binary.BigEndian.Uint16(buf))
	if n > tinyMax {
		return 0, fmt.Errorf("tiny: frame of %d bytes exceeds limit %d", n, tinyMax)
	}
	if len(buf) < n {
		switch {
		case c.eager:
			n = len(buf)
		case c.impatient:
			return 0, errors.New("tiny: short frame")
		default:
			return 0, nil
		}
	}
	if c.fragile {
		_ = kindNames[buf[2]]
	} else if buf[2] == 0 || int(buf[2]) >= len(kindNames) {
		return 0, fmt.Errorf("tiny: bad kind %d", buf[2])
	}
	body := buf[tinyHeader:n]
	for len(body) > 0 {
		nl := bytes.IndexByte(body, '\n')
		if nl < 0 {
			return 0, errors.New("tiny: header line without a newline")
		}
		line := body[:nl]
		eq := bytes.IndexByte(line, '=')
		if eq < 0 {
			return 0, errors.New("tiny: header line without '='")
		}
		if c.alias {
			msg.Headers.Add(unsafe.String(unsafe.SliceData(line), eq), unsafe.String(unsafe.SliceData(line[eq+1:]), len(line)-eq-1))
		} else {
			msg.Headers.Add(string(line[:eq]), string(line[eq+1:]))
		}
		body = body[nl+1:]
	}
	msg.Kind = protocols.Kind(buf[2])
	msg.ID = uint64(binary.BigEndian.Uint32(buf[3:]))
	if c.stretchesN && n < len(buf) {
		n++
	}
	msg.Raw = buf[:n]
	return n, nil
}

// appendTiny appends a frame.
func appendTiny(dst []byte, kind protocols.Kind, id uint64, hs []protocols.Header) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, byte(kind))
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	for _, h := range hs {
		dst = append(append(append(append(dst, h.Key...), '='), h.Value...), '\n')
	}
	binary.BigEndian.PutUint16(dst[start:], uint16(len(dst)-start-tinyHeader))
	return dst
}

func (c *tiny) Encode(dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) ([]byte, error) {
	if id > 1<<32-1 {
		return dst, fmt.Errorf("tiny: ID %d overflows", id)
	}
	var hs protocols.Headers
	for _, h := range msg.Headers.All() {
		hs.Add(h.Key, h.Value)
	}
	if !c.deafToSet {
		for _, h := range set {
			hs.Set(h.Key, h.Value)
		}
	}
	return appendTiny(dst, msg.Kind, id, hs.All()), nil
}

func (c *tiny) ErrorReply(dst []byte, req *protocols.Message, _ protocols.Reason, text string) []byte {
	id := req.ID
	if c.lostID {
		id = 0
	}
	return appendTiny(dst, protocols.KindError, id, []protocols.Header{{Key: "error", Value: text}})
}

func (c *tiny) HeartbeatReply(dst []byte, req *protocols.Message) []byte {
	return appendTiny(dst, protocols.KindHeartbeatReply, req.ID, nil)
}

var _ protocols.Codec = (*tiny)(nil)

func hdrs(kv ...string) []protocols.Header {
	var out []protocols.Header
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, protocols.Header{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

// tinySplit is tiny with a Splitter: a request whose "keys" header lists
// several comma-separated keys splits into one request per key; the merge
// is a response with "merged" set to the number of parts.
type tinySplit struct {
	tiny
	aliasParts bool // a part's Raw is the request's own bytes
	mergeTwo   bool // Merge appends two frames
}

func (c *tinySplit) Split(parts []protocols.Message, req *protocols.Message) []protocols.Message {
	keys, _ := req.Headers.Get("keys")
	if !strings.Contains(keys, ",") {
		return parts
	}
	for _, key := range strings.Split(keys, ",") {
		var hs protocols.Headers
		for _, h := range req.Headers.All() {
			hs.Add(h.Key, h.Value)
		}
		hs.Set("keys", key)
		var part protocols.Message
		if _, err := c.Decode(appendTiny(nil, protocols.KindRequest, req.ID, hs.All()), &part); err != nil {
			panic(err)
		}
		if c.aliasParts {
			part.Raw = req.Raw
		}
		parts = append(parts, part)
	}
	return parts
}

func (c *tinySplit) Merge(dst []byte, req *protocols.Message, replies [][]byte) []byte {
	dst = appendTiny(dst, protocols.KindResponse, req.ID, hdrs("merged", fmt.Sprint(len(replies))))
	if c.mergeTwo {
		dst = appendTiny(dst, protocols.KindResponse, req.ID, nil)
	}
	return dst
}

// tinySession is tiny with a SessionCodec answering method=ping itself.
type tinySession struct {
	tiny
	chatty bool // appends a reply to requests it forwards
}

func (c *tinySession) NewSession() protocols.Session { return tinySessionState{c} }

type tinySessionState struct{ c *tinySession }

func (s tinySessionState) Intercept(dst []byte, req *protocols.Message) ([]byte, protocols.Verdict) {
	if m, _ := req.Headers.Get("method"); m == "ping" {
		return appendTiny(dst, protocols.KindResponse, req.ID, hdrs("result", "pong")), protocols.Answer
	}
	if s.c.chatty {
		dst = appendTiny(dst, protocols.KindResponse, req.ID, nil)
	}
	return dst, protocols.Forward
}
