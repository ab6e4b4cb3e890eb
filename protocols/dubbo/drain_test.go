package dubbo

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

func TestDrainFrame(t *testing.T) {
	c := &Codec{maxBody: DefaultMaxBodyBytes}
	frame := c.DrainFrame([]byte("x"))[1:]
	var m protocols.Message
	n, err := c.Decode(frame, &m)
	if err != nil || n != len(frame) || m.Kind != protocols.KindHeartbeat {
		t.Fatalf("Decode = %d, %v, kind %v; want the whole frame as an event request", n, err, m.Kind)
	}
	h := parseHeader(frame)
	if h.isTwoWay() || h.serial() != serialHessian2 || string(frame[headerLen:]) != "\x01R" {
		t.Fatalf("readonly event %x: want a oneway hessian2 event with the string \"R\"", frame)
	}
}

func TestRejectReply(t *testing.T) {
	c := &Codec{maxBody: DefaultMaxBodyBytes}
	over := func(flags byte) []byte {
		h := appendHeader(nil, flags, 0, 42)
		binary.BigEndian.PutUint32(h[12:], DefaultMaxBodyBytes+1)
		return h
	}
	for _, tc := range []struct {
		name   string
		buf    []byte
		answer bool
	}{
		{"two-way request over the limit", over(flagRequest | flagTwoWay | serialHessian2), true},
		{"oneway request", over(flagRequest | serialHessian2), false},
		{"event", over(flagRequest | flagTwoWay | flagEvent | serialHessian2), false},
		{"response", over(serialHessian2), false},
		{"half a header", over(flagRequest | flagTwoWay | serialHessian2)[:8], false},
		{"bad magic", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m protocols.Message
			_, derr := c.Decode(tc.buf, &m)
			if derr == nil {
				derr = errors.New("test")
			}
			reply := c.RejectReply(nil, tc.buf, derr)
			if !tc.answer {
				if len(reply) != 0 {
					t.Fatalf("reply %x, want none", reply)
				}
				return
			}
			status, text, err := ParseResponseValue(reply)
			if err != nil || status != StatusBadRequest || parseHeader(reply).id != 42 || !strings.Contains(text, "exceeds limit 8388608") {
				t.Fatalf("reply status %d id %d %q (%v), want BAD_REQUEST to 42 naming the limit", status, parseHeader(reply).id, text, err)
			}
		})
	}
}
