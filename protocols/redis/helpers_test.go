package redis

import (
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// newCodec builds a codec from a JSON config ("" for the defaults).
func newCodec(t testing.TB, cfg string) *Codec {
	t.Helper()
	c, err := New([]byte(cfg))
	if err != nil {
		t.Fatalf("New(%s): %v", cfg, err)
	}
	return c.(*Codec)
}

// mb builds a multibulk request.
func mb(args ...string) []byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return AppendCommand(nil, b...)
}

// decodeReq decodes one whole request, failing the test otherwise.
func decodeReq(t testing.TB, c *Codec, frame []byte) *protocols.Message {
	t.Helper()
	var msg protocols.Message
	n, err := c.Decode(frame, &msg)
	if err != nil || n != len(frame) {
		t.Fatalf("Decode(%q) = %d, %v; want %d", frame, n, err, len(frame))
	}
	return &msg
}

// attrs renders a message's headers as "k=v k=v" for comparisons.
func attrs(m *protocols.Message) string {
	var b strings.Builder
	for i, h := range m.Headers.All() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h.Key + "=" + h.Value)
	}
	return b.String()
}

// everySplit checks that every strict prefix of frame decodes as
// incomplete (0, nil) and the whole frame as one frame, with decode.
func everySplit(t *testing.T, frame []byte, decode func([]byte, *protocols.Message) (int, error)) {
	t.Helper()
	var msg protocols.Message
	for i := range frame {
		// A fresh copy, so a decoder reading past the prefix would be
		// caught by the race detector or the bounds check.
		part := append([]byte(nil), frame[:i]...)
		if n, err := decode(part, &msg); n != 0 || err != nil {
			t.Fatalf("prefix %d of %q: Decode = %d, %v; want 0, nil", i, frame, n, err)
		}
	}
	if n, err := decode(frame, &msg); n != len(frame) || err != nil {
		t.Fatalf("%q: Decode = %d, %v; want %d", frame, n, err, len(frame))
	}
}
