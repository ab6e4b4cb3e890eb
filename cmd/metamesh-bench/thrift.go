package main

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/thrift"
)

// The thrift-server's service and method (testdata/peers/thrift/echo.thrift:
// string echo(1: string msg)).
const (
	echoService = "Echo"
	echoMethod  = "echo"
)

// thriftWorkload calls Echo.echo(msg) on an apache/thrift Go
// TSimpleServer, testdata/peers/cmd/thrift-server, over the framed
// transport and the strict binary protocol. The server handles one call
// at a time per connection, in order, so pipelined calls are answered in
// order.
var thriftWorkload = &workload{
	name:   "thrift",
	title:  "Thrift Echo.echo, framed strict binary, on apache/thrift TSimpleServer (thrift-server)",
	server: "thrift-server",
	serverArgs: func(addr string) []string {
		return []string{"--addr", addr, "--version", serverVersion, "--transport", "framed", "--protocol", "binary"}
	},
	codec:   thrift.Name,
	service: echoService,
	// Plain (not multiplexed) calls name no service.
	defaultService: echoService,
	newCodec:       func() (protocols.Codec, error) { return thrift.New(nil) },
	request: func(msg string) []byte {
		return appendThriftMessage(nil, thriftCall, echoMethod, 0, 1, msg)
	},
	idOff:      thriftSeqOff(echoMethod),
	idLen:      4,
	replyValue: func(reply *protocols.Message) (string, error) { return thriftEchoValue(reply.Raw) },
}

// Strict binary protocol constants.
const (
	thriftVersion1  = 0x80010000 // version word, ORed with the message type
	thriftCall      = 1
	thriftReply     = 2
	thriftException = 3
	thriftStop      = 0
	thriftI32       = 8
	thriftString    = 11
)

// appendThriftMessage appends a framed strict-binary message whose struct
// holds one string field: a call's arguments or a reply's result.
func appendThriftMessage(dst []byte, typ byte, name string, seq uint32, field int16, s string) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0) // the frame length, set below
	dst = binary.BigEndian.AppendUint32(dst, thriftVersion1|uint32(typ))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(name)))
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint32(dst, seq)
	dst = append(dst, thriftString)
	dst = binary.BigEndian.AppendUint16(dst, uint16(field))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	dst = append(dst, s...)
	dst = append(dst, thriftStop)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// thriftSeqOff is the offset of the seqid in a framed strict-binary
// message named name: after the frame length, version word and name.
func thriftSeqOff(name string) int { return 12 + len(name) }

// thriftMessage is a parsed framed strict-binary message.
type thriftMessage struct {
	typ  byte
	name []byte
	seq  uint32
	body []byte // the struct: arguments, result or exception
}

var errThriftShort = errors.New("thrift message ends early")

// parseThriftMessage parses the message header of a framed strict-binary
// frame (as the codec returns it in Message.Raw).
func parseThriftMessage(frame []byte) (thriftMessage, error) {
	var m thriftMessage
	if len(frame) < 12 || int(binary.BigEndian.Uint32(frame)) != len(frame)-4 {
		return m, errors.New("not one whole thrift frame")
	}
	v := binary.BigEndian.Uint32(frame[4:])
	if v&0xffffff00 != thriftVersion1 {
		return m, fmt.Errorf("version word 0x%08x is not strict binary", v)
	}
	m.typ = byte(v)
	n := binary.BigEndian.Uint32(frame[8:])
	if uint64(n)+16 > uint64(len(frame)) {
		return m, errThriftShort
	}
	m.name = frame[12 : 12+n]
	m.seq = binary.BigEndian.Uint32(frame[12+n:])
	m.body = frame[16+n:]
	return m, nil
}

// fields calls fn with each field of the message's struct, up to its stop
// byte: the id, the type and the value (a string's bytes, an i32's four).
// Any other field type is an error: the bench's messages have none.
func (m thriftMessage) fields(fn func(id int16, typ byte, val []byte)) error {
	b := m.body
	for {
		if len(b) < 1 {
			return errThriftShort
		}
		typ := b[0]
		if typ == thriftStop {
			if len(b) > 1 {
				return fmt.Errorf("%d bytes after the struct", len(b)-1)
			}
			return nil
		}
		if len(b) < 3 {
			return errThriftShort
		}
		id := int16(binary.BigEndian.Uint16(b[1:]))
		b = b[3:]
		var n int
		switch typ {
		case thriftI32:
			n = 4
		case thriftString:
			if len(b) < 4 {
				return errThriftShort
			}
			size := binary.BigEndian.Uint32(b)
			if uint64(size) > uint64(len(b)-4) {
				return errThriftShort
			}
			b, n = b[4:], int(size)
		default:
			return fmt.Errorf("field %d has type %d, not string or i32", id, typ)
		}
		if len(b) < n {
			return errThriftShort
		}
		fn(id, typ, b[:n])
		b = b[n:]
	}
}

// thriftEchoValue returns the string an echo REPLY carries (its result's
// field 0), or an error naming what the frame holds instead: an
// exception's type and message, or a malformed frame.
func thriftEchoValue(frame []byte) (string, error) {
	m, err := parseThriftMessage(frame)
	if err != nil {
		return "", err
	}
	if string(m.name) != echoMethod {
		return "", fmt.Errorf("reply to method %.100q, not %q", m.name, echoMethod)
	}
	var (
		value, text []byte
		hasValue    bool
		excType     int32
	)
	err = m.fields(func(id int16, typ byte, val []byte) {
		switch {
		case id == 0 && typ == thriftString:
			value, hasValue = val, true
		case id == 1 && typ == thriftString:
			text = val
		case id == 2 && typ == thriftI32:
			excType = int32(binary.BigEndian.Uint32(val))
		}
	})
	switch {
	case err != nil:
		return "", err
	case m.typ == thriftException:
		return "", fmt.Errorf("TApplicationException type %d: %.200s", excType, text)
	case m.typ != thriftReply:
		return "", fmt.Errorf("message type %d is not a reply", m.typ)
	case !hasValue:
		return "", errors.New("reply without a success value")
	}
	return string(value), nil
}
