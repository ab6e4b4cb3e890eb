package rediscluster

import (
	"fmt"
	"net"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/redis"
)

// maxMapReply bounds a slot map reply (a cluster of a thousand nodes
// answers CLUSTER SHARDS in about 300 KB).
const maxMapReply = 16 << 20

// replyReader reads the replies of a connection of the proxy's own, one
// at a time.
type replyReader struct {
	nc    net.Conn
	codec *redis.Codec
	buf   []byte
	off   int
	msg   protocols.Message
}

// next returns the next reply, valid until the following call.
func (r *replyReader) next() (*protocols.Message, error) {
	for {
		if r.off < len(r.buf) {
			n, err := r.codec.DecodeResponse(r.buf[r.off:], &r.msg)
			if err != nil {
				return nil, err
			}
			if n > 0 {
				r.off += n
				return &r.msg, nil
			}
		}
		if len(r.buf)-r.off > maxMapReply {
			return nil, fmt.Errorf("reply longer than %d bytes", maxMapReply)
		}
		if len(r.buf) == cap(r.buf) {
			r.buf = append(r.buf, make([]byte, max(4096, len(r.buf)))...)[:len(r.buf)]
		}
		n, err := r.nc.Read(r.buf[len(r.buf):cap(r.buf)])
		r.buf = r.buf[:len(r.buf)+n]
		if err != nil && n == 0 {
			return nil, err
		}
	}
}
