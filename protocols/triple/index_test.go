package triple

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// peerReader reads what the proxy sends as its peer does: one Framer over
// the whole connection, with one HPACK decoder.
type peerReader struct {
	src bytes.Buffer
	fr  *http2.Framer
}

func newPeerReader() *peerReader {
	r := &peerReader{}
	r.fr = http2.NewFramer(nil, &r.src)
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	return r
}

// blocks reads b, the next bytes the proxy sent, and returns the fields
// of each header block in it, and the size of each block's fragments.
func (r *peerReader) blocks(t *testing.T, b []byte) (fields [][]hpack.HeaderField, sizes []int) {
	t.Helper()
	r.src.Write(b)
	for r.src.Len() > 0 {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("the peer can't read what the proxy sent: %v", err)
		}
		if mh, ok := f.(*http2.MetaHeadersFrame); ok {
			fields = append(fields, mh.Fields)
			sizes = append(sizes, int(mh.Header().Length))
		}
	}
	return fields, sizes
}

// responseMessage is a unary response in the codec's own form, decoded.
func responseMessage(t *testing.T, c *Codec) *protocols.Message {
	t.Helper()
	raw := sampleResponse(t, 1, "0")
	var m protocols.Message
	if n, err := c.Decode(raw, &m); err != nil || n != len(raw) {
		t.Fatalf("Decode = %d, %v", n, err)
	}
	return &m
}

// TestConnEncodeIndexes: the header blocks a connection sends are indexed
// into the peer's dynamic table, so from the second response on each
// field is one byte; the peer decodes every block to the fields the
// proxy had. Fails without index.go (every block literal).
func TestConnEncodeIndexes(t *testing.T) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, true)
	r := newPeerReader()
	m := responseMessage(t, c)
	want := [][]hpack.HeaderField{
		fieldsOf(":status", "200", "content-type", "application/grpc+proto"),
		fieldsOf("grpc-status", "0"),
	}
	for i := range 5 {
		out, err := d.Encode(nil, m, uint64(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		fields, sizes := r.blocks(t, out)
		if !slices.EqualFunc(fields, want, slices.Equal) {
			t.Fatalf("response %d: the peer decoded %v, want %v", i, fields, want)
		}
		if i > 0 && (sizes[0] != 2 || sizes[1] != 1) {
			t.Fatalf("response %d: blocks of %v bytes, want [2 1] (indexed)", i, sizes)
		}
	}
}

// bigResponse is a unary response in the codec's own form whose DATA is
// n bytes, its trailers with grpc-status status.
func bigResponse(t *testing.T, c *Codec, n int, status string) *protocols.Message {
	t.Helper()
	w := getWriter(nil)
	w.headers(1, fieldsOf(":status", "200", "content-type", "application/grpc"), false)
	w.data(1, bytes.Repeat([]byte{'x'}, n), false)
	w.headers(1, fieldsOf("grpc-status", status), true)
	raw := w.put()
	var m protocols.Message
	if k, err := c.Decode(raw, &m); err != nil || k != len(raw) {
		t.Fatalf("Decode = %d, %v", k, err)
	}
	return &m
}

// TestConnEncodeHeldBlocksLiteral: the trailers of a response held back
// by the client's flow control stay literal, which changes no table, so
// the client decodes everything in the order it comes although blocks
// with the same fields were indexed and sent meanwhile.
func TestConnEncodeHeldBlocksLiteral(t *testing.T) {
	c := &Codec{maxMessage: 1 << 20, maxStreams: DefaultMaxStreams}
	d := newConnDecoder(c, true)
	d.preface = false
	p := newPeer()
	feed := feeder(t, d, p)
	feed(func() { _ = p.fr.WriteWindowUpdate(0, 1<<20) }) // the stream's window holds it back, not the connection's
	r := newPeerReader()
	out, err := d.Encode(nil, bigResponse(t, c, 100_000, "5"), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fields, _ := r.blocks(t, out); len(fields) != 1 {
		t.Fatalf("the held response sent %d header blocks at once, want its headers only", len(fields))
	}
	for i := range 3 {
		out, err := d.Encode(nil, bigResponse(t, c, 10, "5"), uint64(1+i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if fields, _ := r.blocks(t, out); len(fields) != 2 || valueOf(fields[1], "grpc-status") != "5" {
			t.Fatalf("response %d: the client decoded %v", i, fields)
		}
	}
	fields, _ := r.blocks(t, feed(func() { _ = p.fr.WriteWindowUpdate(1, 1<<20) }))
	if len(fields) != 1 || valueOf(fields[0], "grpc-status") != "5" {
		t.Fatalf("the released trailers decoded as %v", fields)
	}
}

// TestConnEncodeTableLimit: a peer that allows no dynamic table gets
// blocks that need none.
func TestConnEncodeTableLimit(t *testing.T) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, true)
	d.preface = false
	p := newPeer()
	feed := feeder(t, d, p)
	feed(func() { _ = p.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0}) })
	r := newPeerReader()
	r.fr.ReadMetaHeaders.SetAllowedMaxDynamicTableSize(0)
	m := responseMessage(t, c)
	for i := range 3 {
		out, err := d.Encode(nil, m, uint64(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if fields, _ := r.blocks(t, out); len(fields) != 2 || valueOf(fields[1], "grpc-status") != "0" {
			t.Fatalf("response %d: the peer decoded %v", i, fields)
		}
	}
}

// TestWriterAnnouncesNoTableSize: a block of the codec's own form never
// carries an update of the table size, which would empty the table of a
// peer it is sent to.
func TestWriterAnnouncesNoTableSize(t *testing.T) {
	w := writers.New().(*writer)
	if b := w.encode(fieldsOf("grpc-status", "0")); b[0]&0xe0 == 0x20 {
		t.Fatalf("a new writer's first block begins with a table size update: % x", b)
	}
}

func valueOf(fields []hpack.HeaderField, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// TestIndexerNeverIndexesCredentials: an authorization header reaches the
// peer as a never-indexed literal (the peer's decoder reports it
// Sensitive) on every block, the other fields indexed; the same block
// again is a memo hit.
func TestIndexerNeverIndexesCredentials(t *testing.T) {
	x := newIndexer()
	w := getWriter(nil)
	own := append([]byte(nil), w.encode(fieldsOf(":path", "/s/m", "authorization", "Bearer abc"))...)
	w.put()
	dec := hpack.NewDecoder(4096, nil)
	for i := range 3 {
		fields, err := dec.DecodeFull(x.index(own))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			if f.Sensitive != (f.Name == "authorization") {
				t.Fatalf("block %d: %s sent sensitive=%v", i, f.Name, f.Sensitive)
			}
		}
	}
	if x.misses != 0 {
		t.Fatalf("the repeated block missed the memo %d times in a row", x.misses)
	}
}

// TestIndexerSkipsBlocksThatKeepMissing: blocks that differ on every call
// without changing the table (a never-indexed value) stop being encoded
// again after missRun of them: they go out literal, as the own form has
// them.
func TestIndexerSkipsBlocksThatKeepMissing(t *testing.T) {
	x := newIndexer()
	w := getWriter(nil)
	defer w.put()
	for i := range missRun + 1 {
		own := w.encode(fieldsOf("authorization", fmt.Sprintf("Bearer %d", i)))
		if got := x.index(own); i == missRun && !bytes.Equal(got, own) {
			t.Fatalf("block %d after %d misses was encoded again, want the own form", i, missRun)
		}
	}
}

// TestConnEncodeKeepsNeverIndexed: a field a client sent as a never-indexed
// literal reaches the server never-indexed on every call (RFC 7541, section
// 6.2.3), though the upstream connection indexes the rest of the block.
func TestConnEncodeKeepsNeverIndexed(t *testing.T) {
	c := newCodec().(*Codec)
	down := newConnDecoder(c, true)
	p := newPeer()
	p.request(t, hpack.HeaderField{Name: "x-api-key", Value: "s3cr3t", Sensitive: true})
	msgs := decodeAll(t, down, p.take())
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	up := newConnDecoder(c, false)
	r := newPeerReader()
	for i := range 2 {
		out, err := up.Encode(nil, &msgs[0], uint64(i+1), nil)
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := r.blocks(t, out)
		k := slices.IndexFunc(fields[0], func(f hpack.HeaderField) bool { return f.Name == "x-api-key" })
		if k < 0 || fields[0][k].Value != "s3cr3t" || !fields[0][k].Sensitive {
			t.Fatalf("call %d: the server got %v, want x-api-key never-indexed", i, fields[0])
		}
	}
}

// TestConnEncodeStopsIndexingChurn: blocks that change the table every
// time (a header whose value differs on every call) are indexed for
// missRun blocks, then sent literal for skipBlocks: the peer decodes every
// one, and the literal ones are the codec's own bytes.
func TestConnEncodeStopsIndexingChurn(t *testing.T) {
	c := newCodec().(*Codec)
	d := newConnDecoder(c, false)
	r := newPeerReader()
	literal := 0
	for i := range missRun + 10 {
		var m protocols.Message
		raw := sampleRequest(t, 1, "x-trace", fmt.Sprintf("trace-%d", i))
		if _, err := c.Decode(raw, &m); err != nil {
			t.Fatal(err)
		}
		out, err := d.Encode(nil, &m, uint64(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		fields, _ := r.blocks(t, out)
		if v := valueOf(fields[0], "x-trace"); v != fmt.Sprintf("trace-%d", i) {
			t.Fatalf("request %d: x-trace %q", i, v)
		}
		if bytes.Equal(out[:m.Marks[markBlockEnd]][frameHeaderLen:], m.Raw[frameHeaderLen:m.Marks[markBlockEnd]]) {
			literal++
		}
	}
	if literal != 10 {
		t.Fatalf("%d of the last blocks sent literal, want the 10 after %d that changed the table", literal, missRun)
	}
}

// TestIndexerKeepsNoLargeRoom: after a 4 MiB response and a response with
// a 1 MiB header, the connection's indexer keeps no room of that size (its
// scratch, its encoder's buffer, its memo), and the peer decodes both.
func TestIndexerKeepsNoLargeRoom(t *testing.T) {
	c := &Codec{maxMessage: DefaultMaxMessageBytes, maxStreams: DefaultMaxStreams}
	d := newConnDecoder(c, true)
	d.send.conn, d.send.initial = 1<<30, 1<<30 // the peer's windows take it all
	r := newPeerReader()
	w := getWriter(nil)
	w.headers(1, fieldsOf(":status", "200", "content-type", "application/grpc", "x-big", strings.Repeat("v", 1<<20)), false)
	w.data(1, grpcMessage("x"), false)
	w.headers(1, fieldsOf("grpc-status", "0"), true)
	raw := w.put()
	var bigHeader protocols.Message
	if k, err := c.Decode(raw, &bigHeader); err != nil || k != len(raw) {
		t.Fatalf("Decode = %d, %v", k, err)
	}
	for i, m := range []*protocols.Message{bigResponse(t, c, 4<<20-4096, "0"), &bigHeader, &bigHeader} {
		out, err := d.Encode(nil, m, uint64(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if fields, _ := r.blocks(t, out); len(fields) != 2 || valueOf(fields[1], "grpc-status") != "0" {
			t.Fatalf("response %d: the peer decoded %d blocks", i, len(fields))
		}
	}
	x := d.send.idx
	kept := cap(x.tail) + x.block.Cap()
	for _, m := range x.memo {
		kept += cap(m.own) + cap(m.indexed)
	}
	if kept > 4*keptMax {
		t.Fatalf("the indexer keeps %d KiB after the responses", kept>>10)
	}
}
