package dubbo

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

const (
	testService = "org.apache.dubbo.samples.api.GreetingsService"
	reqFlags    = flagRequest | flagTwoWay | serialHessian2
)

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// hs is a hessian2 string.
func hs(s string) []byte { return putString(nil, s) }

// hmap is an untyped hessian2 map of the given keys and values.
func hmap(kv ...[]byte) []byte { return cat([]byte{'H'}, cat(kv...), []byte{'Z'}) }

// frame wraps body in a Dubbo header.
func frame(flags, status byte, id uint64, body ...[]byte) []byte {
	b := appendHeader(nil, flags, status, id)
	b = append(b, cat(body...)...)
	setBodyLen(b, 0)
	return b
}

// reqBody is a request body with the given argument values (raw hessian2)
// and attachments value (raw; nil for none at all).
func reqBody(version, method, desc string, att []byte, args ...[]byte) []byte {
	return cat(hs("2.0.2"), hs(testService), hs(version), hs(method), hs(desc), cat(args...), att)
}

func newCodec(t testing.TB, cfg string) *Codec {
	t.Helper()
	c, err := New([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Codec)
}

// mustDecode decodes one whole frame and fails unless it takes all of b.
func mustDecode(t testing.TB, c *Codec, b []byte) *protocols.Message {
	t.Helper()
	msg := &protocols.Message{}
	n, err := c.Decode(b, msg)
	if err != nil {
		t.Fatalf("decode: %v\n% x", err, b[:min(len(b), 96)])
	}
	if n != len(b) {
		t.Fatalf("decode took %d of %d bytes", n, len(b))
	}
	return msg
}

func frameID(b []byte) uint64 { return binary.BigEndian.Uint64(b[4:12]) }

// hdrs lists key=value pairs as headers, for comparisons.
func hdrs(kv ...string) []protocols.Header {
	var h []protocols.Header
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, protocols.Header{Key: kv[i], Value: kv[i+1]})
	}
	return h
}

func sameHeaders(a, b []protocols.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// responseAttachments reads the attachments of an OK hessian2 response.
func responseAttachments(t testing.TB, b []byte) (flag int32, att map[string]string) {
	t.Helper()
	r := reader{b: b, pos: headerLen}
	flag, err := r.readInt()
	if err != nil {
		t.Fatal(err)
	}
	if flag != respNullValue && flag != respNullValueWithAttachments {
		if err := r.skip(); err != nil {
			t.Fatal(err)
		}
	}
	if flag < respWithExceptionWithAttachments {
		return flag, nil
	}
	if b[r.pos] != 'H' && b[r.pos] != 'M' {
		t.Fatalf("attachments tag 0x%02x", b[r.pos])
	}
	if b[r.pos] == 'M' {
		r.pos++
		if err := r.skipType(); err != nil {
			t.Fatal(err)
		}
	} else {
		r.pos++
	}
	att = map[string]string{}
	for b[r.pos] != 'Z' {
		k, ok, err := r.appendString(nil)
		if err != nil || !ok {
			t.Fatalf("key: %v %v", ok, err)
		}
		v, ok, err := r.appendString(nil)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			att[string(k)] = string(v)
		} else if err := r.skip(); err != nil {
			t.Fatal(err)
		}
	}
	return flag, att
}
