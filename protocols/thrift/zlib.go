package thrift

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/metamesh/metamesh/protocols"
)

// zlibState is a zlib reader and writer and their buffers, reused across
// frames from a pool: a zlib reader holds ~40 KB of window and tables, a
// writer more, and making them per frame was most of a zlib frame's cost.
type zlibState struct {
	src      bytes.Reader
	r        io.ReadCloser // a zlib reader (zlib.Resetter); nil until first use
	inflated bytes.Buffer
	w        *zlib.Writer // nil until first use
	deflated bytes.Buffer
}

var zlibStates = sync.Pool{New: func() any { return new(zlibState) }}

// getZlib takes a zlibState from the pool; putZlib returns it, after which
// the bytes it returned must no longer be used.
func getZlib() *zlibState { return zlibStates.Get().(*zlibState) }

func putZlib(z *zlibState) {
	// A frame that inflated to megabytes should not pin them in the pool.
	const keep = 1 << 20
	if z.inflated.Cap() > keep {
		z.inflated = bytes.Buffer{}
	}
	if z.deflated.Cap() > keep {
		z.deflated = bytes.Buffer{}
	}
	z.src.Reset(nil)
	zlibStates.Put(z)
}

// inflate decompresses a zlib THeader payload, refusing more than max
// bytes. The result is valid until z goes back to the pool.
func (z *zlibState) inflate(p []byte, max int) ([]byte, error) {
	z.src.Reset(p)
	var err error
	if z.r == nil {
		z.r, err = zlib.NewReader(&z.src)
	} else {
		err = z.r.(zlib.Resetter).Reset(&z.src, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("thrift: zlib: %w", err)
	}
	z.inflated.Reset()
	if _, err := z.inflated.ReadFrom(io.LimitReader(z.r, int64(max)+1)); err != nil {
		return nil, fmt.Errorf("thrift: zlib: %w", err)
	}
	if z.inflated.Len() > max {
		return nil, fmt.Errorf("thrift: zlib payload inflates past limit %d", max)
	}
	return z.inflated.Bytes(), nil
}

// deflate compresses the parts, in order, and appends the result to dst.
func (z *zlibState) deflate(dst []byte, parts ...[]byte) ([]byte, error) {
	z.deflated.Reset()
	if z.w == nil {
		z.w = zlib.NewWriter(&z.deflated)
	} else {
		z.w.Reset(&z.deflated)
	}
	for _, p := range parts {
		if _, err := z.w.Write(p); err != nil {
			return dst, fmt.Errorf("thrift: zlib: %w", err)
		}
	}
	if err := z.w.Close(); err != nil {
		return dst, fmt.Errorf("thrift: zlib: %w", err)
	}
	return append(dst, z.deflated.Bytes()...), nil
}

// encodeZlib re-encodes a zlib THeader frame: the seqid sits inside the
// compressed payload, so the payload is inflated, patched and deflated.
func (c *Codec) encodeZlib(dst []byte, msg *protocols.Message, id uint32, set []protocols.Header) ([]byte, error) {
	raw, m := msg.Raw, msg.Marks
	th, err := parseTHeader(raw)
	if err != nil {
		return dst, err
	}
	z := getZlib()
	defer putZlib(z)
	payload, err := z.inflate(raw[th.hdrEnd:], c.max)
	if err != nil {
		return dst, err
	}
	seq, seqLen := m[markSeq], m[markSeqLen]
	if seq+seqLen > len(payload) {
		return dst, fmt.Errorf("thrift: encode: message holds no decoded thrift frame")
	}
	start := len(dst)
	dst = append(dst, raw[:headerPreLen]...)
	if dst, err = appendHeaderBlock(dst, raw, th, set); err != nil {
		return dst[:start], err
	}
	binary.BigEndian.PutUint16(dst[start+12:], uint16((len(dst)-start-headerPreLen)/4))
	var seqBuf [10]byte // a compact varint seqid is at most 5 bytes
	newSeq := appendSeq(seqBuf[:0], m[markLayout]>>4&0xf, id)
	if dst, err = z.deflate(dst, payload[:seq], newSeq, payload[seq+seqLen:]); err != nil {
		return dst[:start], err
	}
	return finishFrame(dst, start, transHeader, id)
}
