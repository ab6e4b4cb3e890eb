package triple

import (
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/metamesh/metamesh/protocols"
)

// The gRPC status codes the codec names.
const (
	codeOK                = 0
	codeUnknown           = 2
	codeDeadlineExceeded  = 4
	codePermissionDenied  = 7
	codeResourceExhausted = 8
	codeUnimplemented     = 12
	codeInternal          = 13
	codeUnavailable       = 14
	codeDataLoss          = 15
	codeUnauthenticated   = 16
)

// reasonCode is the gRPC status of the proxy's reply for each reason
// (docs/reference.md, Error replies).
func reasonCode(r protocols.Reason) uint32 {
	switch r {
	case protocols.ReasonNoRoute:
		return codeUnimplemented
	case protocols.ReasonTimeout:
		return codeDeadlineExceeded
	case protocols.ReasonOverloaded, protocols.ReasonNoHealthyUpstream:
		return codeUnavailable
	case protocols.ReasonRateLimited:
		return codeResourceExhausted
	case protocols.ReasonDenied:
		return codePermissionDenied
	}
	return codeUnavailable
}

// httpStatusCode maps an HTTP status other than 200 to a gRPC status, as
// gRPC clients do.
func httpStatusCode(code int) uint32 {
	switch code {
	case 400:
		return codeInternal
	case 401:
		return codeUnauthenticated
	case 403:
		return codePermissionDenied
	case 404:
		return codeUnimplemented
	case 429, 502, 503, 504:
		return codeUnavailable
	}
	return codeUnknown
}

// ErrorReply appends a Trailers-Only gRPC response to req with the status
// for reason and text as grpc-message.
func (c *Codec) ErrorReply(dst []byte, req *protocols.Message, reason protocols.Reason, text string) []byte {
	return c.StatusReply(dst, req, reasonCode(reason), text)
}

// StatusReply appends a Trailers-Only gRPC response to req: one HEADERS
// frame ending the stream, with grpc-status status and grpc-message text.
func (c *Codec) StatusReply(dst []byte, req *protocols.Message, status uint32, text string) []byte {
	ct, _ := req.Headers.Get("content-type")
	if !strings.HasPrefix(ct, "application/grpc") {
		ct = "application/grpc"
	}
	fields := []hpack.HeaderField{
		{Name: ":status", Value: "200"},
		{Name: "content-type", Value: ct},
		{Name: "grpc-status", Value: strconv.FormatUint(uint64(status), 10)},
		{Name: "grpc-message", Value: percentEncode(text)},
	}
	w := getWriter(dst)
	w.headers(streamOf(min(req.ID, MaxID)), fields, true)
	return w.put()
}

// percentEncode encodes a grpc-message as gRPC requires: bytes outside
// printable ASCII, and '%', as %XX.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 0x20 && ch <= 0x7e && ch != '%' {
			b.WriteByte(ch)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[ch>>4])
		b.WriteByte(hex[ch&15])
	}
	return b.String()
}

// HeartbeatReply appends the ACK of a PING.
func (c *Codec) HeartbeatReply(dst []byte, req *protocols.Message) []byte {
	if len(req.Raw) != frameHeaderLen+8 {
		return dst
	}
	var data [8]byte
	copy(data[:], req.Raw[frameHeaderLen:])
	w := getWriter(dst)
	_ = w.fr.WritePing(true, data)
	return w.put()
}

// Handshake appends what the proxy sends first on a new upstream
// connection: the client preface and its SETTINGS (no replies awaited).
func (c *Codec) Handshake(dst []byte) ([]byte, int) {
	dst = append(dst, http2.ClientPreface...)
	return c.settings(dst, false), 0
}

// settings appends the proxy's SETTINGS and the credit that raises the
// connection's receive window to the streams' (conn.go reads each stream
// whole, up to the message limit).
func (c *Codec) settings(dst []byte, server bool) []byte {
	w := getWriter(dst)
	s := []http2.Setting{
		{ID: http2.SettingInitialWindowSize, Val: c.window()},
		{ID: http2.SettingMaxFrameSize, Val: maxFrameSize},
	}
	if server {
		s = append(s, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: uint32(c.maxStreams)})
	} else {
		s = append(s, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	}
	_ = w.fr.WriteSettings(s...)
	_ = w.fr.WriteWindowUpdate(0, c.window()-initialWindow)
	return w.put()
}

// initialWindow is HTTP/2's initial flow-control window.
const initialWindow = 65535

// window is the receive window of each stream, and of the connection: a
// whole message.
func (c *Codec) window() uint32 { return uint32(max(c.maxMessage, initialWindow)) }

// DrainFrame appends a GOAWAY that lets the client's open streams finish
// and asks it to open new ones elsewhere.
func (c *Codec) DrainFrame(dst []byte) []byte {
	w := getWriter(dst)
	_ = w.fr.WriteGoAway(1<<31-1, http2.ErrCodeNo, nil)
	return w.put()
}

// RejectReply appends the GOAWAY that tells a client why its connection
// is closed (a frame that breaks HTTP/2 or exceeds the limits), with the
// error as its debug data; nothing to a client that did not speak HTTP/2.
func (c *Codec) RejectReply(dst, buf []byte, err error) []byte {
	if strings.HasPrefix(err.Error(), errNotPreface) {
		return dst
	}
	w := getWriter(dst)
	_ = w.fr.WriteGoAway(0, http2.ErrCodeProtocol, []byte(err.Error()))
	return w.put()
}
