package triple

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/http2"

	"github.com/metamesh/metamesh/protocols"
)

// withStream returns frames with every frame's stream ID set to id.
func withStream(frames []byte, id uint32) []byte {
	out := append([]byte(nil), frames...)
	for i := 0; i+frameHeaderLen <= len(out); i += frameHeaderLen + parseHeader(out[i:]).length {
		binary.BigEndian.PutUint32(out[i+5:], id)
	}
	return out
}

// TestRecallRepeatedBlock: a block of indexes that repeats decodes to the
// same fields, from the recall, and a block that changes the table makes
// the recall stale: the same bytes sent again mean other fields (the
// peer's new entry shifted its indexes), and the decoder finds those.
// Fails when the recall ignores table changes.
func TestRecallRepeatedBlock(t *testing.T) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, true)
	p := newPeer()
	p.out.WriteString(http2.ClientPreface)
	send := func(stream uint32, k string) []byte {
		p.headers(t, stream, false, requestFields("s.S", "M", "x-k", k)...)
		p.data(t, stream, true, grpcMessage("x"))
		return p.take()
	}
	decodeAll(t, d, send(1, "one")) // the peer indexes every field
	again := send(3, "one")
	for i := range 3 {
		m := decodeAll(t, d, withStream(again, uint32(3+2*i)))
		if len(m) != 1 || attr(t, &m[0], "service") != "s.S" || attr(t, &m[0], "x-k") != "one" {
			t.Fatalf("repeated block %d decoded to %v", i, m)
		}
	}
	if d.recall.gen != 1 || d.recall.memo[0].fields == nil {
		t.Fatalf("the repeated block was not kept (generation %d)", d.recall.gen)
	}
	decodeAll(t, d, send(9, "two")) // x-k: two is a new entry: indexes shift
	// The repeated block's bytes now name other entries: :path is no
	// longer among them.
	var m protocols.Message
	for buf := withStream(again, 11); len(buf) > 0; {
		n, err := d.Decode(buf, &m)
		if err != nil {
			return // the fields found are not a request's: the decoder looked
		}
		buf = buf[n:]
	}
	if m.Kind == protocols.KindRequest && attr(t, &m, "service") == "s.S" {
		t.Fatalf("the repeated block's bytes after a table change decoded as before: %v", m.Headers.All())
	}
}

func TestIndexesOnly(t *testing.T) {
	for _, c := range []struct {
		block []byte
		want  bool
	}{
		{[]byte{0x82, 0x86, 0xbe}, true},
		{[]byte{0xff, 0x80, 0x01, 0x82}, true}, // a multi-byte index
		{[]byte{0xff, 0x80}, false},            // cut short
		{[]byte{0x82, 0x40, 0x01, 'a', 0x01, 'b'}, false},
		{[]byte{0x20}, false},
		{nil, false},
	} {
		if got := indexesOnly(c.block); got != c.want {
			t.Errorf("indexesOnly(% x) = %v, want %v", c.block, got, c.want)
		}
	}
}
