package dubbo_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/codectest"
	"github.com/metamesh/metamesh/protocols/dubbo"
)

// TestConformance runs the codec conformance kit on every frame in
// testdata: captured from dubbo-go and Java peers, written by hessian2
// libraries, and the hand-built seeds.
func TestConformance(t *testing.T) {
	var reqs, resps []codectest.Frame
	for _, f := range codectest.ReadFrames(t,
		filepath.Join("testdata", "captured", "*.bin"),
		filepath.Join("testdata", "hessian2", "*.bin"),
		filepath.Join("testdata", "seed", "*.bin"),
	) {
		f.Kind = kindByName(t, f.Name)
		if f.Kind.IsRequest() || f.Kind == protocols.KindHeartbeat {
			reqs = append(reqs, f)
		} else {
			resps = append(resps, f)
		}
	}
	// A header announcing a body one byte over the default 8 MiB limit.
	oversize := []byte{0xda, 0xbb, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x80, 0x00, 0x01}
	codectest.Run(t, codectest.Suite{
		New:       newCodec(t),
		Factory:   dubbo.New,
		Options:   []byte(`{"maxFrameBytes": 1024}`),
		Requests:  reqs,
		Responses: resps,
		Oversize:  oversize,
		Mutation:  true,
		MaxID:     math.MaxUint64,
		Statuses:  []uint32{uint32(dubbo.StatusServerError), uint32(dubbo.StatusServerTimeout), uint32(dubbo.StatusThreadpoolExhausted)},
	})
}

func newCodec(t *testing.T) func() protocols.Codec {
	return func() protocols.Codec {
		c, err := dubbo.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// kindByName maps a testdata file name's prefix to its frame's kind.
func kindByName(t *testing.T, name string) protocols.Kind {
	for _, p := range []struct {
		prefix string
		kind   protocols.Kind
	}{
		{"request-", protocols.KindRequest},
		{"oneway-", protocols.KindOneway},
		{"response-", protocols.KindResponse},
		{"error-", protocols.KindError},
		{"heartbeat_reply-", protocols.KindHeartbeatReply},
		{"heartbeat-", protocols.KindHeartbeat},
	} {
		if strings.HasPrefix(name, p.prefix) {
			return p.kind
		}
	}
	t.Fatalf("testdata frame %s: its name doesn't start with a kind", name)
	return 0
}
