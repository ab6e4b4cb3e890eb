// Package thrift is the codec for Apache Thrift: framed, unframed
// (buffered) and THeader transports carrying the binary (strict and old
// style) or compact protocol, detected per frame. It reads routing
// attributes from the message header and THeader info headers, never from
// the arguments. See README.md for the attributes and limits.
package thrift

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/metamesh/metamesh/protocols"
)

// Name is the protocol name the codec registers under.
const Name = "thrift"

func init() { protocols.MustRegister(Name, New) }

// Codec is the Thrift codec. It holds only its configuration, so one value
// serves any number of connections concurrently.
type Codec struct {
	max       int
	transport int // 0: auto, else trans*
	protocol  int // 0: auto, protoStrict (any binary) or protoCompact
	exclusive bool
	// oneway names the methods whose CALL messages expect no reply, for
	// clients (such as apache/thrift's Go library) that send oneway
	// calls as CALL, not ONEWAY: "method" for any service or
	// "Service:method" for one.
	oneway map[string]bool
}

// config is the JSON configuration New accepts.
type config struct {
	Transport     *string  `json:"transport"`
	Protocol      *string  `json:"protocol"`
	MaxFrameBytes *int64   `json:"maxFrameBytes"`
	OnewayMethods []string `json:"onewayMethods"`
	Upstream      *string  `json:"upstream"`
}

// New builds a codec from its JSON configuration (nil or empty for the
// defaults): {"transport": "auto|framed|unframed|header",
// "protocol": "auto|binary|compact", "maxFrameBytes": N (default 16 MiB),
// "onewayMethods": ["method", "Service:method", ...],
// "upstream": "multiplexed|exclusive"}.
func New(cfg []byte) (protocols.Codec, error) {
	c := &Codec{max: DefaultMaxFrameBytes}
	var conf config
	if err := protocols.DecodeConfig(cfg, &conf); err != nil {
		return nil, fmt.Errorf("thrift: config: %w", err)
	}
	if t := conf.Transport; t != nil {
		switch *t {
		case "auto":
		case "framed":
			c.transport = transFramed
		case "unframed":
			c.transport = transUnframed
		case "header":
			c.transport = transHeader
		default:
			return nil, fmt.Errorf("thrift: config: transport: %q is not auto, framed, unframed or header", *t)
		}
	}
	if p := conf.Protocol; p != nil {
		switch *p {
		case "auto":
		case "binary":
			c.protocol = protoStrict
		case "compact":
			c.protocol = protoCompact
		default:
			return nil, fmt.Errorf("thrift: config: protocol: %q is not auto, binary or compact", *p)
		}
	}
	if m := conf.MaxFrameBytes; m != nil {
		if *m <= 0 || *m > math.MaxInt32 {
			return nil, fmt.Errorf("thrift: config: maxFrameBytes must be in 1..%d, got %d", math.MaxInt32, *m)
		}
		c.max = int(*m)
	}
	for i, m := range conf.OnewayMethods {
		if m == "" || strings.HasPrefix(m, ":") || strings.HasSuffix(m, ":") {
			return nil, fmt.Errorf("thrift: config: onewayMethods[%d]: %q is not \"method\" or \"Service:method\"", i, m)
		}
		if c.oneway == nil {
			c.oneway = make(map[string]bool, len(conf.OnewayMethods))
		}
		c.oneway[m] = true
	}
	if u := conf.Upstream; u != nil {
		switch *u {
		case "multiplexed":
		case "exclusive":
			c.exclusive = true
		default:
			return nil, fmt.Errorf("thrift: config: upstream: %q is not multiplexed or exclusive", *u)
		}
	}
	return c, nil
}

// Model reports that Thrift pairs replies with calls by seqid, or, when
// configured for servers that can't take concurrent calls on one
// connection, that each upstream connection carries one call at a time.
func (c *Codec) Model() protocols.Model {
	if c.exclusive {
		return protocols.Exclusive
	}
	return protocols.Multiplexed
}

// isOneway reports whether a CALL to name (as on the wire, with any
// "Service:" prefix) is configured as oneway.
func (c *Codec) isOneway(name []byte) bool {
	if c.oneway == nil {
		return false
	}
	if c.oneway[string(name)] {
		return true
	}
	i := bytes.IndexByte(name, ':')
	return i >= 0 && c.oneway[string(name[i+1:])]
}

// Decode decodes the first frame in buf.
func (c *Codec) Decode(buf []byte, msg *protocols.Message) (int, error) {
	msg.Reset()
	trans, err := c.detectTransport(buf)
	if err != nil || trans == 0 {
		return 0, err
	}
	var n int
	if trans == transUnframed {
		n, err = c.decodeUnframed(buf, msg)
	} else {
		n, err = c.decodeFramed(buf, trans, msg)
	}
	if err != nil || n == 0 {
		msg.Reset()
		return 0, err
	}
	return n, nil
}

// detectTransport says how buf's first frame is delimited, or 0 to wait.
func (c *Codec) detectTransport(buf []byte) (int, error) {
	if c.transport == transUnframed {
		return transUnframed, nil
	}
	if len(buf) < 4 {
		return 0, nil
	}
	w := binary.BigEndian.Uint32(buf)
	if c.transport == 0 && (w&versionMask == version1 || (buf[0] == compactID && buf[1]&0x1f == compactVer)) {
		return transUnframed, nil
	}
	if w > uint32(c.max) {
		if c.transport == 0 && (buf[0] == 0x80 || buf[0] == compactID) {
			return 0, fmt.Errorf("thrift: bad message header 0x%08x", w)
		}
		return 0, fmt.Errorf("thrift: frame length %d exceeds limit %d", w, c.max)
	}
	if len(buf) < 8 {
		return 0, nil
	}
	isHeader := binary.BigEndian.Uint16(buf[4:]) == headerMagic
	switch c.transport {
	case transFramed:
		if isHeader {
			return 0, fmt.Errorf("thrift: THeader frame on a framed-only listener")
		}
		return transFramed, nil
	case transHeader:
		if !isHeader {
			return 0, fmt.Errorf("thrift: frame without THeader magic on a header-only listener")
		}
		return transHeader, nil
	}
	if isHeader {
		return transHeader, nil
	}
	if (buf[4] == 0x80 && buf[5] == 0x01) || (buf[4] == compactID && buf[5]&0x1f == compactVer) {
		return transFramed, nil
	}
	// Old-style binary: a frame length and then a name length, or a name
	// length alone. Framed if the type byte after the inner name is valid.
	if n := int64(binary.BigEndian.Uint32(buf[4:])); n+9 <= int64(w) {
		if len(buf) <= 8+int(n) {
			return 0, nil
		}
		if t := buf[8+n]; t >= typeCall && t <= typeOneway {
			return transFramed, nil
		}
	}
	return transUnframed, nil
}

func (c *Codec) decodeFramed(buf []byte, trans int, msg *protocols.Message) (int, error) {
	size := int(binary.BigEndian.Uint32(buf))
	if size < 2 {
		return 0, fmt.Errorf("thrift: frame length %d is too small", size)
	}
	if len(buf)-4 < size {
		return 0, nil
	}
	frame := buf[: 4+size : 4+size]
	var th theader
	payload, payloadOff := frame[4:], 4
	if trans == transHeader {
		var err error
		if th, err = parseTHeader(frame); err != nil {
			return 0, err
		}
		payload, payloadOff = frame[th.hdrEnd:], th.hdrEnd
		if th.zlib {
			// The inflated payload is read during Decode only: the
			// attributes are copied out and Marks hold offsets.
			z := getZlib()
			defer putZlib(z)
			if payload, err = z.inflate(payload, c.max); err != nil {
				return 0, err
			}
		}
	}
	proto, err := detectProto(payload)
	if err == errShort {
		return 0, fmt.Errorf("thrift: frame of %d bytes holds no message", size)
	}
	if err != nil {
		return 0, err
	}
	if trans == transHeader && (th.protoID == headerProtoCo) != (proto == protoCompact) {
		return 0, fmt.Errorf("thrift: THeader protocol id %d does not match the message", th.protoID)
	}
	h, err := parseMessage(payload, proto, c.max)
	if err == errShort {
		return 0, fmt.Errorf("thrift: message header overruns its %d-byte frame", size)
	}
	if err != nil {
		return 0, err
	}
	if err := c.fill(msg, frame, payload, payloadOff, h, trans, th); err != nil {
		return 0, err
	}
	return len(frame), nil
}

func (c *Codec) decodeUnframed(buf []byte, msg *protocols.Message) (int, error) {
	proto, err := detectProto(buf)
	if err == nil {
		var h msgHeader
		if h, err = parseMessage(buf, proto, c.max); err == nil {
			s := skipper{b: buf, compact: proto == protoCompact}
			var end int
			if end, err = s.skipStruct(h.end, 0); err == nil {
				if end > c.max {
					return 0, fmt.Errorf("thrift: unframed message of %d bytes exceeds limit %d", end, c.max)
				}
				frame := buf[:end:end]
				return end, c.fill(msg, frame, frame, 0, h, transUnframed, theader{})
			}
		}
	}
	if err == errShort {
		if len(buf) > c.max {
			return 0, fmt.Errorf("thrift: unframed message exceeds limit %d", c.max)
		}
		return 0, nil
	}
	return 0, err
}

// fill sets msg from a parsed frame. payload holds the message (inflated
// when zlib), at payloadOff in frame unless zlib.
func (c *Codec) fill(msg *protocols.Message, frame, payload []byte, payloadOff int, h msgHeader, trans int, th theader) error {
	if c.protocol != 0 && (c.protocol == protoCompact) != (h.proto == protoCompact) {
		return fmt.Errorf("thrift: %s message on a %s-only listener", protoName(h.proto), protoName(c.protocol))
	}
	msg.Raw = frame
	msg.ID = uint64(uint32(h.seq))
	layout := trans | h.proto<<4
	seqOff := payloadOff + h.seqOff
	if th.zlib {
		layout |= layoutZlib
		seqOff = h.seqOff
	}
	msg.Marks = [protocols.MarkCount]int{layout, payloadOff, seqOff, h.seqLen, th.hdrStart, th.hdrEnd}
	switch h.typ {
	case typeCall:
		msg.Kind = protocols.KindRequest
		if c.isOneway(payload[h.nameOff : h.nameOff+h.nameLen]) {
			msg.Kind, h.typ = protocols.KindOneway, typeOneway
		}
	case typeOneway:
		msg.Kind = protocols.KindOneway
	case typeReply:
		msg.Kind = protocols.KindResponse
		return nil
	case typeException:
		msg.Kind = protocols.KindError
		msg.Status = exceptionType(payload, h.end, h.proto == protoCompact)
		return nil
	}

	// One string holds every attribute byte of the frame: the info
	// headers and the name are sliced from it.
	name := payload[h.nameOff : h.nameOff+h.nameLen]
	var all string
	nameAt := 0
	switch {
	case trans != transHeader:
		all = string(name)
	case th.zlib:
		b := make([]byte, 0, th.hdrEnd-th.infoStart+len(name))
		b = append(append(b, frame[th.infoStart:th.hdrEnd]...), name...)
		all, nameAt = string(b), th.hdrEnd-th.infoStart
	default:
		all = string(frame[th.infoStart : payloadOff+h.nameOff+h.nameLen])
		nameAt = payloadOff + h.nameOff - th.infoStart
	}
	method := all[nameAt : nameAt+len(name)]
	if i := strings.IndexByte(method, ':'); i >= 0 {
		msg.Headers.Add("service", method[:i])
		method = method[i+1:]
	}
	msg.Headers.Add("method", method)
	msg.Headers.Add("message_type", typeName(h.typ))
	if trans == transHeader {
		it := infoIter{b: frame[:th.hdrEnd], pos: th.infoStart}
		for {
			k, v, ok, _ := it.next()
			if !ok {
				break
			}
			key := all[k.off-th.infoStart : k.off-th.infoStart+k.n]
			if key == "service" || key == "method" || key == "message_type" {
				continue // the message's own attributes win
			}
			msg.Headers.Set(key, all[v.off-th.infoStart:v.off-th.infoStart+v.n])
		}
	}
	return nil
}

func protoName(p int) string {
	if p == protoCompact {
		return "compact"
	}
	return "binary"
}

// Encode appends msg's frame with its seqid replaced by id (and, for
// THeader, the header seqid too). For a THeader frame, set adds or
// replaces info headers; other transports have no place for headers and
// ignore set.
func (c *Codec) Encode(dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) ([]byte, error) {
	if id > math.MaxUint32 {
		return dst, fmt.Errorf("thrift: encode: id %d overflows the 32-bit seqid", id)
	}
	raw, m := msg.Raw, msg.Marks
	trans, proto := m[markLayout]&0xf, m[markLayout]>>4&0xf
	if trans < transFramed || trans > transHeader || proto < protoStrict || proto > protoCompact ||
		m[markPayload] > len(raw) || m[markHdrEnd] > len(raw) {
		return dst, fmt.Errorf("thrift: encode: message holds no decoded thrift frame")
	}
	if m[markLayout]&layoutZlib != 0 {
		return c.encodeZlib(dst, msg, uint32(id), set)
	}
	if m[markSeq]+m[markSeqLen] > len(raw) {
		return dst, fmt.Errorf("thrift: encode: message holds no decoded thrift frame")
	}
	start := len(dst)
	if trans == transHeader && len(set) > 0 {
		th, err := parseTHeader(raw)
		if err != nil {
			return dst, err
		}
		dst = append(dst, raw[:headerPreLen]...)
		if dst, err = appendHeaderBlock(dst, raw, th, set); err != nil {
			return dst[:start], err
		}
		binary.BigEndian.PutUint16(dst[start+12:], uint16((len(dst)-start-headerPreLen)/4))
	} else {
		dst = append(dst, raw[:m[markPayload]]...)
	}
	dst = append(dst, raw[m[markPayload]:m[markSeq]]...)
	dst = appendSeq(dst, proto, uint32(id))
	dst = append(dst, raw[m[markSeq]+m[markSeqLen]:]...)
	return finishFrame(dst, start, trans, uint32(id))
}

// appendSeq appends a seqid in the protocol's encoding.
func appendSeq(dst []byte, proto int, id uint32) []byte {
	if proto == protoCompact {
		return appendUvarint(dst, uint64(id))
	}
	return binary.BigEndian.AppendUint32(dst, id)
}

// finishFrame sets the frame length and THeader seqid of the frame
// appended at dst[start:].
func finishFrame(dst []byte, start, trans int, id uint32) ([]byte, error) {
	if trans == transUnframed {
		return dst, nil
	}
	n := len(dst) - start - 4
	if n > math.MaxInt32 {
		return dst[:start], fmt.Errorf("thrift: encode: frame length %d overflows", n)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(n))
	if trans == transHeader {
		binary.BigEndian.PutUint32(dst[start+8:], id)
	}
	return dst, nil
}

// HeartbeatReply returns dst unchanged: Thrift has no heartbeats, and
// Decode never yields KindHeartbeat.
func (c *Codec) HeartbeatReply(dst []byte, _ *protocols.Message) []byte { return dst }

var _ protocols.Codec = (*Codec)(nil)
