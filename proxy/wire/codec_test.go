package wire_test

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// lenCodec is a toy protocol: a 4-byte big-endian payload length, then the
// payload. A length above maxFrame can never be valid.
type lenCodec struct{ maxFrame int }

var errTooLong = errors.New("lencodec: frame too long")

func (c lenCodec) Model() protocols.Model { return protocols.Pipelined }

func (c lenCodec) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	if len(buf) < 4 {
		return 0, nil
	}
	n := int(binary.BigEndian.Uint32(buf))
	if c.maxFrame > 0 && n > c.maxFrame {
		return 0, fmt.Errorf("%w: %d bytes", errTooLong, n)
	}
	if len(buf) < 4+n {
		return 0, nil
	}
	msg.Kind = protocols.KindRequest
	msg.Raw = buf[:4+n]
	return 4 + n, nil
}

func (c lenCodec) Encode(dst []byte, msg *protocols.Message, _ uint64, _ []protocols.Header) ([]byte, error) {
	return append(dst, msg.Raw...), nil
}

func (c lenCodec) ErrorReply(dst []byte, _ *protocols.Message, _ protocols.Reason, text string) []byte {
	return frame(dst, []byte(text))
}

func (c lenCodec) HeartbeatReply(dst []byte, _ *protocols.Message) []byte { return frame(dst, nil) }

// frame appends one length-prefixed frame of payload to dst.
func frame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// payload returns n bytes that say which frame they belong to.
func payload(i, n int) []byte {
	p := make([]byte, n)
	for j := range p {
		p[j] = byte(i + j)
	}
	return p
}

var _ protocols.Codec = lenCodec{}
