package triple

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// frameHeaderLen is the size of an HTTP/2 frame header.
const frameHeaderLen = 9

// maxFrameSize is the largest frame the codec writes and reads: HTTP/2's
// initial SETTINGS_MAX_FRAME_SIZE, which every peer accepts, and which the
// proxy never raises.
const maxFrameSize = 16384

// MaxID is the largest request ID: stream 2*ID+1 must fit in 31 bits.
const MaxID = 1<<30 - 1

// streamOf is the client-initiated (odd) stream that carries request ID
// id, and idOf its inverse: a Message's ID is its stream's, halved, so the
// proxy's IDs 1, 2, 3… on an upstream connection are its streams 3, 5, 7….
func streamOf(id uint64) uint32 { return uint32(2*id + 1) }
func idOf(stream uint32) uint64 { return uint64(stream-1) / 2 }

// header is the fixed part of one frame at the front of a buffer.
type header struct {
	length int
	typ    http2.FrameType
	flags  http2.Flags
	stream uint32
}

func parseHeader(b []byte) header {
	return header{
		length: int(b[0])<<16 | int(b[1])<<8 | int(b[2]),
		typ:    http2.FrameType(b[3]),
		flags:  http2.Flags(b[4]),
		stream: binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1),
	}
}

// patchStreams sets the stream of every frame in frames (whole frames, as
// the codec's messages are) to stream.
func patchStreams(frames []byte, stream uint32) {
	for off := 0; off+frameHeaderLen <= len(frames); {
		binary.BigEndian.PutUint32(frames[off+5:], stream)
		off += frameHeaderLen + parseHeader(frames[off:]).length
	}
}

// sink is the io.Writer a pooled Framer writes to: whatever slice the
// caller points it at.
type sink struct{ b []byte }

func (s *sink) Write(p []byte) (int, error) {
	s.b = append(s.b, p...)
	return len(p), nil
}

// writer writes frames and header blocks that need no connection state:
// its HPACK encoder never indexes a field (its table size is 0), so a
// block decodes the same on any connection, whatever came before it, and
// changes no peer's table. The update of its table size to 0, which an
// encoder announces in its first block, is written and dropped when the
// writer is made: a peer that got it would empty its table, which the
// connection's indexed blocks refer to (index.go).
type writer struct {
	out   sink
	fr    *http2.Framer
	block bytes.Buffer
	enc   *hpack.Encoder
}

var writers = sync.Pool{New: func() any {
	w := &writer{}
	w.fr = http2.NewFramer(&w.out, nil)
	w.enc = hpack.NewEncoder(&w.block)
	w.enc.SetMaxDynamicTableSizeLimit(0)
	w.encode([]hpack.HeaderField{{Name: ":status", Value: "200"}}) // takes the update
	return w
}}

// getWriter returns a pooled writer appending to dst; put returns the
// bytes and the writer to the pool.
func getWriter(dst []byte) *writer {
	w := writers.Get().(*writer)
	w.out.b = dst
	return w
}

func (w *writer) put() []byte {
	out := w.out.b
	w.out.b = nil
	w.block.Reset()
	writers.Put(w)
	return out
}

// headers writes fields as one header block on stream: a HEADERS frame
// and the CONTINUATION frames it needs.
func (w *writer) headers(stream uint32, fields []hpack.HeaderField, endStream bool) {
	w.frames(stream, w.encode(fields), endStream)
}

// encode returns the header block of fields, valid until the writer's
// next use.
func (w *writer) encode(fields []hpack.HeaderField) []byte {
	w.block.Reset()
	for _, f := range fields {
		_ = w.enc.WriteField(f) // writes to a bytes.Buffer: no error
	}
	return w.block.Bytes()
}

// frames writes block, a whole header block, on stream: a HEADERS frame
// and the CONTINUATION frames it needs.
func (w *writer) frames(stream uint32, block []byte, endStream bool) {
	first := block[:min(len(block), maxFrameSize)]
	block = block[len(first):]
	_ = w.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: first, EndStream: endStream, EndHeaders: len(block) == 0})
	for len(block) > 0 {
		part := block[:min(len(block), maxFrameSize)]
		block = block[len(part):]
		_ = w.fr.WriteContinuation(stream, len(block) == 0, part)
	}
}

// data writes p as DATA frames on stream, the last one ending the stream
// when end is set.
func (w *writer) data(stream uint32, p []byte, end bool) {
	for {
		part := p[:min(len(p), maxFrameSize)]
		p = p[len(part):]
		_ = w.fr.WriteData(stream, end && len(p) == 0, part)
		if len(p) == 0 {
			return
		}
	}
}

// blockMemo is the last header block a connection decoder wrote in one
// place of its messages (first block, trailers), with the fields it was
// written from: a block of the same fields reuses its bytes, since a
// connection's calls mostly repeat their headers and a response's
// trailers.
type blockMemo struct {
	fields []hpack.HeaderField
	block  []byte
}

// headers writes fields as one header block on stream with w, as
// w.headers does.
func (m *blockMemo) headers(w *writer, stream uint32, fields []hpack.HeaderField, endStream bool) {
	if !slices.Equal(m.fields, fields) {
		m.block = append(m.block[:0], w.encode(fields)...)
		m.fields = append(m.fields[:0], fields...)
	}
	w.frames(stream, m.block, endStream)
}

// blockDecoder decodes header blocks that need no connection state (the
// codec's own form): its dynamic table is emptied before every block.
type blockDecoder struct {
	dec    *hpack.Decoder
	fields []hpack.HeaderField
}

var blockDecoders = sync.Pool{New: func() any {
	d := &blockDecoder{}
	d.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) { d.fields = append(d.fields, f) })
	return d
}}

// decodeBlock decodes one whole header block into fields, appended to dst.
func decodeBlock(dst []hpack.HeaderField, block []byte, maxBytes int) ([]hpack.HeaderField, error) {
	d := blockDecoders.Get().(*blockDecoder)
	defer blockDecoders.Put(d)
	d.dec.SetMaxDynamicTableSize(0)
	d.dec.SetMaxDynamicTableSize(4096)
	d.dec.SetMaxStringLength(maxBytes)
	d.fields = dst
	_, err := d.dec.Write(block)
	if err == nil {
		err = d.dec.Close()
	}
	out := d.fields
	d.fields = nil
	if err != nil {
		return dst, fmt.Errorf("triple: header block: %w", err)
	}
	return out, nil
}

// validFields checks what HTTP/2 requires of field names: lower case,
// pseudo-headers first.
func validFields(fields []hpack.HeaderField) error {
	regular := false
	for _, f := range fields {
		if f.Name == "" {
			return fmt.Errorf("triple: empty header name")
		}
		if f.IsPseudo() {
			if regular {
				return fmt.Errorf("triple: pseudo-header %q after a regular header", f.Name)
			}
			continue
		}
		regular = true
		if strings.ToLower(f.Name) != f.Name {
			return fmt.Errorf("triple: header name %q is not lower case", f.Name)
		}
	}
	return nil
}
