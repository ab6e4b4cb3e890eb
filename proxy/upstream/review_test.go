package upstream_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/upstream"
)

// failCodec refuses to encode requests whose payload ends in "bad".
type failCodec struct{ idCodec }

func (c failCodec) Encode(dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) ([]byte, error) {
	if strings.HasSuffix(string(msg.Raw), "bad") {
		return dst, errors.New("cannot encode")
	}
	return c.idCodec.Encode(dst, msg, id, set)
}

// An exclusive connection whose request could not be encoded goes back to
// the pool: nothing was sent on it.
func TestExclusiveEncodeErrorFreesTheConnection(t *testing.T) {
	srv := newServer(t, nil)
	m := upstream.NewManager(zap.NewNop(), upstream.Stats{})
	t.Cleanup(m.Drain)
	pool := m.Pool(srv.addr(), failCodec{idCodec{protocols.Exclusive}}, upstream.Options{ConnectTimeout: time.Second, MaxConnections: 1})
	rcv := newRecorder()
	if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 1, "bad")); err == nil {
		t.Fatal("a request that cannot be encoded was sent")
	}
	if err := sendNow(pool, newCall(rcv, protocols.KindRequest, 2, "good")); err != nil {
		t.Fatalf("a good request after an encode error: %v", err)
	}
	rcv.wait(t, 1)
}
