package thrift

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/metamesh/metamesh/protocols"
)

// inflate decompresses a zlib THeader payload, refusing more than max bytes.
func inflate(p []byte, max int) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(p))
	if err != nil {
		return nil, fmt.Errorf("thrift: zlib: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("thrift: zlib: %w", err)
	}
	if len(out) > max {
		return nil, fmt.Errorf("thrift: zlib payload inflates past limit %d", max)
	}
	return out, nil
}

// encodeZlib re-encodes a zlib THeader frame: the seqid sits inside the
// compressed payload, so the payload is inflated, patched and deflated.
func (c *Codec) encodeZlib(dst []byte, msg *protocols.Message, id uint32, set []protocols.Header) ([]byte, error) {
	raw, m := msg.Raw, msg.Marks
	th, err := parseTHeader(raw)
	if err != nil {
		return dst, err
	}
	payload, err := inflate(raw[th.hdrEnd:], c.max)
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
	plain := make([]byte, 0, len(payload)+4)
	plain = append(plain, payload[:seq]...)
	plain = appendSeq(plain, m[markLayout]>>4&0xf, id)
	plain = append(plain, payload[seq+seqLen:]...)
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	if _, err := w.Write(plain); err != nil {
		return dst[:start], fmt.Errorf("thrift: zlib: %w", err)
	}
	if err := w.Close(); err != nil {
		return dst[:start], fmt.Errorf("thrift: zlib: %w", err)
	}
	dst = append(dst, buf.Bytes()...)
	return finishFrame(dst, start, transHeader, id)
}
