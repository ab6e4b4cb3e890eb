package dubbo

import (
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// Frame builders for tests, the load generator and proxy tests: they write
// what dubbo-go and Java Dubbo write for string-typed calls.

// Request describes a hessian2 request frame whose arguments are strings.
type Request struct {
	// ID is the request ID.
	ID uint64
	// TwoWay asks for a response; false makes a oneway call.
	TwoWay bool
	// DubboVersion is the protocol version string; empty means
	// DefaultDubboVersion.
	DubboVersion string
	// Service is the service path (the interface name).
	Service string
	// Version is the service version.
	Version string
	// Method is the method name.
	Method string
	// Args are the arguments, each typed Ljava/lang/String;.
	Args []string
	// Attachments are written, in order, as a hessian2 untyped map.
	Attachments []protocols.Header
}

const stringDesc = "Ljava/lang/String;"

// AppendRequest appends r as a request frame.
func AppendRequest(dst []byte, r Request) []byte {
	start := len(dst)
	flags := byte(flagRequest | serialHessian2)
	if r.TwoWay {
		flags |= flagTwoWay
	}
	dst = appendHeader(dst, flags, 0, r.ID)
	v := r.DubboVersion
	if v == "" {
		v = DefaultDubboVersion
	}
	dst = putString(dst, v)
	dst = putString(dst, r.Service)
	dst = putString(dst, r.Version)
	dst = putString(dst, r.Method)
	if n := len(r.Args) * len(stringDesc); n <= chunkUnits {
		dst = putChunkHeader(dst, n, true)
		for range r.Args {
			dst = append(dst, stringDesc...)
		}
	} else {
		desc := make([]byte, 0, len(r.Args)*len(stringDesc))
		for range r.Args {
			desc = append(desc, stringDesc...)
		}
		dst = putString(dst, string(desc))
	}
	for _, a := range r.Args {
		dst = putString(dst, a)
	}
	dst = append(dst, 'H')
	for _, h := range r.Attachments {
		dst = putString(dst, h.Key)
		dst = putString(dst, h.Value)
	}
	dst = append(dst, 'Z')
	setBodyLen(dst, start)
	return dst
}

// AppendResponse appends a hessian2 response to request id. Status
// StatusOK carries value as a RESPONSE_VALUE string; any other status
// carries value as the error message.
func AppendResponse(dst []byte, id uint64, status byte, value string) []byte {
	start := len(dst)
	dst = appendHeader(dst, serialHessian2, status, id)
	if status == StatusOK {
		dst = append(dst, 0x90+respValue)
	}
	dst = putString(dst, value)
	setBodyLen(dst, start)
	return dst
}

// AppendHeartbeat appends a two-way heartbeat request (an event with a
// null body).
func AppendHeartbeat(dst []byte, id uint64) []byte {
	start := len(dst)
	dst = appendHeader(dst, flagRequest|flagTwoWay|flagEvent|serialHessian2, 0, id)
	dst = append(dst, 'N')
	setBodyLen(dst, start)
	return dst
}

// ParseResponseValue reads the status and the string out of a response
// frame: the value of an OK response (empty for a null value), or the
// error message of any other status. A heartbeat reply gives its status
// and an empty value. An exception or a value that is not a string is an
// error.
func ParseResponseValue(frame []byte) (status byte, value string, err error) {
	if len(frame) < headerLen || frame[0] != magicHi || frame[1] != magicLo {
		return 0, "", fmt.Errorf("dubbo: not a dubbo frame")
	}
	h := parseHeader(frame)
	if h.bodyLen < 0 || int64(len(frame)-headerLen) < h.bodyLen {
		return 0, "", fmt.Errorf("dubbo: body length %d does not fit a frame of %d bytes", h.bodyLen, len(frame))
	}
	switch {
	case h.isRequest():
		return 0, "", fmt.Errorf("dubbo: frame is a request, not a response")
	case h.isEvent():
		return h.status, "", nil
	case h.serial() != serialHessian2:
		return h.status, "", fmt.Errorf("dubbo: response serialization id %d is not hessian2", h.serial())
	}
	r := reader{b: frame[:headerLen+int(h.bodyLen)], pos: headerLen}
	if h.status == StatusOK {
		flag, err := r.readInt()
		if err != nil {
			return h.status, "", err
		}
		switch flag {
		case respNullValue, respNullValueWithAttachments:
			return h.status, "", nil
		case respWithException, respWithExceptionWithAttachments:
			return h.status, "", fmt.Errorf("dubbo: response carries an exception")
		case respValue, respValueWithAttachments:
		default:
			return h.status, "", fmt.Errorf("dubbo: unknown response flag %d", flag)
		}
	}
	b, ok, err := r.appendString(nil)
	if err != nil {
		return h.status, "", err
	}
	if !ok {
		return h.status, "", r.errorf("response value is not a string")
	}
	return h.status, string(b), nil
}
