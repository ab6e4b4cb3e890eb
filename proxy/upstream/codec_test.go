package upstream_test

import (
	"encoding/binary"
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// idCodec is a toy protocol: a 4-byte big-endian length of the rest, a
// kind byte (protocols.Kind, with moreBit set on a response that more
// responses to the same request follow), an 8-byte request ID, then the
// payload. Its Model is whatever the test needs.
type idCodec struct{ model protocols.Model }

const idHeader = 4 + 1 + 8

// moreBit marks a part of a streamed response in the kind byte.
const moreBit = 0x80

func (c idCodec) Model() protocols.Model { return c.model }

func (c idCodec) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	if len(buf) < 4 {
		return 0, nil
	}
	n := int(binary.BigEndian.Uint32(buf))
	if n < idHeader-4 || n > 1<<20 {
		return 0, fmt.Errorf("idcodec: bad length %d", n)
	}
	if len(buf) < 4+n {
		return 0, nil
	}
	msg.Kind = protocols.Kind(buf[4] &^ moreBit)
	msg.More = buf[4]&moreBit != 0
	msg.ID = binary.BigEndian.Uint64(buf[5:])
	msg.Raw = buf[:4+n]
	return 4 + n, nil
}

func (c idCodec) Encode(dst []byte, msg *protocols.Message, id uint64, _ []protocols.Header) ([]byte, error) {
	at := len(dst)
	dst = append(dst, msg.Raw...)
	binary.BigEndian.PutUint64(dst[at+5:], id)
	return dst, nil
}

func (c idCodec) ErrorReply(dst []byte, req *protocols.Message, _ protocols.Reason, text string) []byte {
	return encodeFrame(dst, protocols.KindError, req.ID, text)
}

func (c idCodec) HeartbeatReply(dst []byte, req *protocols.Message) []byte {
	return encodeFrame(dst, protocols.KindHeartbeatReply, req.ID, "")
}

func encodeFrame(dst []byte, kind protocols.Kind, id uint64, payload string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(idHeader-4+len(payload)))
	dst = append(dst, byte(kind))
	dst = binary.BigEndian.AppendUint64(dst, id)
	return append(dst, payload...)
}

// payloadOf returns the payload of a frame in idCodec's format.
func payloadOf(raw []byte) string { return string(raw[idHeader:]) }

var _ protocols.Codec = idCodec{}
