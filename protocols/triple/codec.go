// Package triple is the codec for Dubbo 3's Triple protocol, which is gRPC
// over HTTP/2: unary calls, one request per stream. A connection's frames
// are read by a decoder of its own (conn.go: HPACK's dynamic table, the
// streams in progress); each whole call becomes one message in the codec's
// own form, which needs no connection state. See README.md.
package triple

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// Name is the protocol name the codec registers under.
const Name = "triple"

func init() { protocols.MustRegister(Name, New) }

// Defaults of the codec's options.
const (
	DefaultMaxMessageBytes = 4 << 20
	DefaultMaxStreams      = 100
)

// Codec is the Triple codec. It holds only its configuration, so one value
// serves any number of connections concurrently.
type Codec struct {
	maxMessage int // bytes of one message's frames
	maxStreams int // streams a client may have open on one connection
}

// config is the JSON configuration New accepts.
type config struct {
	MaxMessageBytes *int `json:"maxMessageBytes"`
	MaxStreams      *int `json:"maxConcurrentStreams"`
}

// New builds a codec from its JSON configuration (nil or empty for the
// defaults): {"maxMessageBytes": N, "maxConcurrentStreams": N}, default
// 4 MiB and 100.
func New(cfg []byte) (protocols.Codec, error) {
	c := &Codec{maxMessage: DefaultMaxMessageBytes, maxStreams: DefaultMaxStreams}
	var conf config
	if err := protocols.DecodeConfig(cfg, &conf); err != nil {
		return nil, fmt.Errorf("triple: config: %w", err)
	}
	if m := conf.MaxMessageBytes; m != nil {
		if *m < 1024 || *m > 1<<30 {
			return nil, fmt.Errorf("triple: config: maxMessageBytes must be in 1024..%d, got %d", 1<<30, *m)
		}
		c.maxMessage = *m
	}
	if m := conf.MaxStreams; m != nil {
		if *m < 1 || *m > 1<<20 {
			return nil, fmt.Errorf("triple: config: maxConcurrentStreams must be in 1..%d, got %d", 1<<20, *m)
		}
		c.maxStreams = *m
	}
	return c, nil
}

// Model reports that Triple pairs responses with requests by stream.
func (c *Codec) Model() protocols.Model { return protocols.Multiplexed }

// Marks the codec records in a Message.
const (
	markBlockEnd = iota // end of the first header block's frames in Raw
)

// Decode decodes one message in the codec's own form at the front of buf:
// a HEADERS frame (and its CONTINUATION frames) whose block needs no
// connection state, then the stream's DATA frames and, for a response, its
// trailers, all on one odd stream, the last frame ending the stream; or a
// PING frame, a heartbeat (its ACK, a heartbeat reply). A connection's
// wire frames are read by its ConnDecoder, which writes messages in this
// form.
func (c *Codec) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	if len(buf) < frameHeaderLen {
		return 0, nil
	}
	h := parseHeader(buf)
	if h.length > maxFrameSize {
		return 0, fmt.Errorf("triple: frame of %d bytes exceeds %d", h.length, maxFrameSize)
	}
	switch h.typ {
	case http2.FramePing:
		if h.length != 8 || h.stream != 0 {
			return 0, fmt.Errorf("triple: PING of %d bytes on stream %d", h.length, h.stream)
		}
		if len(buf) < frameHeaderLen+8 {
			return 0, nil
		}
		msg.Kind = protocols.KindHeartbeat
		if h.flags.Has(http2.FlagPingAck) {
			msg.Kind = protocols.KindHeartbeatReply
		}
		msg.Raw = buf[:frameHeaderLen+8]
		msg.ID = binary.BigEndian.Uint64(msg.Raw[frameHeaderLen:])
		return len(msg.Raw), nil
	case http2.FrameHeaders:
	default:
		return 0, fmt.Errorf("triple: a %v frame begins no message", h.typ)
	}
	if h.stream == 0 || h.stream%2 == 0 {
		return 0, fmt.Errorf("triple: message on stream %d, not a client's", h.stream)
	}
	n, blockEnd, trailers, err := c.walk(buf, h.stream)
	if n == 0 || err != nil {
		return 0, err
	}
	frames := buf[:n:n]
	fields, err := c.fieldsOf(nil, frames[:blockEnd])
	if err != nil {
		return 0, err
	}
	first := len(fields)
	if trailers > 0 {
		if fields, err = c.fieldsOf(fields, frames[trailers:]); err != nil {
			return 0, err
		}
	}
	if err := classify(msg, fields[:first], fields[first:], trailers > 0); err != nil {
		return 0, err
	}
	msg.ID = idOf(h.stream)
	msg.Raw = frames
	msg.Marks[markBlockEnd] = blockEnd
	return n, nil
}

// walk finds the end of the message on stream at the front of buf: its
// length (0 while buf holds only part of it), the end of its first header
// block, and where its trailers begin (0: none).
func (c *Codec) walk(buf []byte, stream uint32) (n, blockEnd, trailers int, err error) {
	const (
		firstBlock = iota
		body
		trailerBlock
	)
	state, inBlock, blockEndsStream := firstBlock, false, false
	for off := 0; ; {
		if len(buf) < off+frameHeaderLen {
			return 0, 0, 0, nil
		}
		h := parseHeader(buf[off:])
		end := off + frameHeaderLen + h.length
		switch {
		case h.length > maxFrameSize:
			return 0, 0, 0, fmt.Errorf("triple: frame of %d bytes exceeds %d", h.length, maxFrameSize)
		case end > c.maxMessage:
			return 0, 0, 0, fmt.Errorf("triple: message of more than %d bytes exceeds the limit %d", end, c.maxMessage)
		case h.stream != stream:
			return 0, 0, 0, fmt.Errorf("triple: frame of stream %d inside the message of stream %d", h.stream, stream)
		case inBlock && h.typ != http2.FrameContinuation:
			return 0, 0, 0, fmt.Errorf("triple: %v frame inside a header block", h.typ)
		case !inBlock && h.typ == http2.FrameContinuation:
			return 0, 0, 0, fmt.Errorf("triple: CONTINUATION frame outside a header block")
		case off > 0 && !inBlock && h.typ != http2.FrameData && h.typ != http2.FrameHeaders:
			return 0, 0, 0, fmt.Errorf("triple: %v frame inside a message", h.typ)
		}
		if len(buf) < end {
			return 0, 0, 0, nil
		}
		switch h.typ {
		case http2.FrameHeaders:
			if off > 0 {
				if !h.flags.Has(http2.FlagHeadersEndStream) {
					return 0, 0, 0, fmt.Errorf("triple: trailers that do not end the stream")
				}
				state, trailers = trailerBlock, off
			}
			inBlock, blockEndsStream = true, h.flags.Has(http2.FlagHeadersEndStream)
		case http2.FrameData:
			if h.flags.Has(http2.FlagDataEndStream) {
				return end, blockEnd, trailers, nil
			}
		}
		off = end
		if inBlock && h.flags.Has(http2.FlagHeadersEndHeaders) { // END_HEADERS and CONTINUATION's share the bit
			inBlock = false
			if state == firstBlock {
				state, blockEnd = body, off
			}
			if blockEndsStream {
				return off, blockEnd, trailers, nil
			}
		}
	}
}

// fieldsOf decodes the header block of frames (a HEADERS frame and its
// CONTINUATION frames) and appends its fields to dst.
func (c *Codec) fieldsOf(dst []hpack.HeaderField, frames []byte) ([]hpack.HeaderField, error) {
	var block []byte
	for off := 0; off < len(frames); {
		h := parseHeader(frames[off:])
		payload := frames[off+frameHeaderLen : off+frameHeaderLen+h.length]
		off += frameHeaderLen + h.length
		frag, err := fragment(h, payload)
		if err != nil {
			return dst, err
		}
		block = append(block, frag...)
	}
	fields, err := decodeBlock(dst, block, c.maxMessage)
	if err != nil {
		return dst, err
	}
	return fields, validFields(fields[len(dst):])
}

// fragment is the header block fragment of a HEADERS or CONTINUATION
// frame's payload, without padding and priority.
func fragment(h header, p []byte) ([]byte, error) {
	if h.typ != http2.FrameHeaders {
		return p, nil
	}
	if h.flags.Has(http2.FlagHeadersPadded) {
		if len(p) < 1 || int(p[0]) > len(p)-1 {
			return nil, fmt.Errorf("triple: HEADERS padding exceeds the frame")
		}
		p = p[1 : len(p)-int(p[0])]
	}
	if h.flags.Has(http2.FlagHeadersPriority) {
		if len(p) < 5 {
			return nil, fmt.Errorf("triple: HEADERS priority exceeds the frame")
		}
		p = p[5:]
	}
	return p, nil
}

// classify sets msg's kind, status and attributes from the fields of its
// first header block and of its trailers.
func classify(msg *protocols.Message, fields, trailers []hpack.HeaderField, hasTrailers bool) error {
	var path, status string
	for _, f := range fields {
		switch f.Name {
		case ":path":
			path = f.Value
		case ":status":
			status = f.Value
		}
	}
	switch {
	case path != "" && status == "":
		if hasTrailers {
			return fmt.Errorf("triple: a request with trailers")
		}
		return requestAttributes(msg, path, fields)
	case status != "" && path == "":
		return responseAttributes(msg, status, fields, trailers)
	}
	return fmt.Errorf("triple: header block with neither :path nor :status (or both)")
}

// Request attributes named by Triple itself, not by a header of their name.
var reserved = map[string]bool{"service": true, "method": true, "version": true, "group": true}

func requestAttributes(msg *protocols.Message, path string, fields []hpack.HeaderField) error {
	rest, ok := strings.CutPrefix(path, "/")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i <= 0 || i == len(rest)-1 {
		return fmt.Errorf("triple: :path %q is not /<service>/<method>", path)
	}
	msg.Kind = protocols.KindRequest
	msg.Headers.Add("service", rest[:i])
	msg.Headers.Add("method", rest[i+1:])
	for _, f := range fields {
		switch {
		case f.IsPseudo(), reserved[f.Name]:
			continue
		case f.Name == "tri-service-version":
			msg.Headers.Set("version", f.Value)
		case f.Name == "tri-service-group":
			msg.Headers.Set("group", f.Value)
		}
		msg.Headers.Set(f.Name, f.Value)
	}
	return nil
}

// responseAttributes sets msg's kind, status and attributes from the
// fields of a response's header blocks.
func responseAttributes(msg *protocols.Message, status string, blocks ...[]hpack.HeaderField) error {
	code, err := strconv.Atoi(status)
	if err != nil || code < 100 || code > 999 {
		return fmt.Errorf("triple: bad :status %q", status)
	}
	msg.Kind = protocols.KindResponse
	grpcStatus, ct := "", ""
	for _, block := range blocks {
		for _, f := range block {
			if f.IsPseudo() {
				continue
			}
			switch f.Name {
			case "grpc-status":
				grpcStatus = f.Value
			case "content-type":
				ct = f.Value
			}
			msg.Headers.Set(f.Name, f.Value)
		}
	}
	switch {
	case code != 200:
		msg.Kind, msg.Status = protocols.KindError, httpStatusCode(code)
	case grpcStatus == "" && !strings.HasPrefix(ct, "application/grpc"):
		// Triple's own unary protocol (application/json, application/proto):
		// its status is the HTTP one.
	case grpcStatus == "":
		// A gRPC response without a status: gRPC calls that an internal
		// error.
		msg.Kind, msg.Status = protocols.KindError, codeInternal
	default:
		s, err := strconv.ParseUint(grpcStatus, 10, 32)
		if err != nil {
			return fmt.Errorf("triple: bad grpc-status %q", grpcStatus)
		}
		if msg.Status = uint32(s); s != codeOK {
			msg.Kind = protocols.KindError
		}
	}
	return nil
}

// Encode appends msg with its stream set to the one of ID id (2*id+1) and
// the headers in set added or replaced in its first header block (names
// lower-cased, as HTTP/2 requires; a relayed response's later parts have
// none: relay.go).
func (c *Codec) Encode(dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) ([]byte, error) {
	if msg.Kind == protocols.KindHeartbeat || msg.Kind == protocols.KindHeartbeatReply {
		// A PING: its ID is its opaque data, which its ACK echoes.
		dst = append(dst, msg.Raw...)
		binary.BigEndian.PutUint64(dst[len(dst)-8:], id)
		return dst, nil
	}
	if id > MaxID {
		return dst, fmt.Errorf("triple: request ID %d exceeds %d", id, MaxID)
	}
	stream := streamOf(id)
	if len(set) == 0 || msg.Marks[markPart] != 0 {
		start := len(dst)
		dst = append(dst, msg.Raw...)
		patchStreams(dst[start:], stream)
		return dst, nil
	}
	blockEnd := msg.Marks[markBlockEnd]
	fields, err := c.fieldsOf(nil, msg.Raw[:blockEnd])
	if err != nil {
		return dst, err
	}
	for _, h := range set {
		fields = setField(fields, strings.ToLower(h.Key), h.Value)
	}
	endStream := parseHeader(msg.Raw).flags.Has(http2.FlagHeadersEndStream)
	w := getWriter(dst)
	w.headers(stream, fields, endStream)
	dst = w.put()
	start := len(dst)
	dst = append(dst, msg.Raw[blockEnd:]...)
	patchStreams(dst[start:], stream)
	return dst, nil
}

// setField replaces the value of the regular field name, or appends it.
func setField(fields []hpack.HeaderField, name, value string) []hpack.HeaderField {
	if name == "" || name[0] == ':' {
		return fields // pseudo-headers are the protocol's
	}
	for i := range fields {
		if fields[i].Name == name {
			fields[i].Value = value
			return fields
		}
	}
	return append(fields, hpack.HeaderField{Name: name, Value: value})
}

// Classify tells a server's failure from an application's error: UNKNOWN,
// INTERNAL and DATA_LOSS are server errors, UNAVAILABLE is retryable
// elsewhere; every other status the application chose.
func (c *Codec) Classify(resp *protocols.Message) protocols.ResponseClass {
	if resp.Kind != protocols.KindError {
		return protocols.ClassOK
	}
	switch resp.Status {
	case codeUnavailable:
		return protocols.ClassUnavailable
	case codeUnknown, codeInternal, codeDataLoss:
		return protocols.ClassServerError
	}
	return protocols.ClassOK
}

// NewConnDecoder returns the read state of one connection (conn.go).
func (c *Codec) NewConnDecoder(server bool) protocols.ConnDecoder { return newConnDecoder(c, server) }

var (
	_ protocols.Codec              = (*Codec)(nil)
	_ protocols.ConnCodec          = (*Codec)(nil)
	_ protocols.StatusReplier      = (*Codec)(nil)
	_ protocols.ResponseClassifier = (*Codec)(nil)
	_ protocols.Handshaker         = (*Codec)(nil)
	_ protocols.Drainer            = (*Codec)(nil)
	_ protocols.Rejecter           = (*Codec)(nil)
)
