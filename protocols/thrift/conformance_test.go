package thrift_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/codectest"
	"github.com/metamesh/metamesh/protocols/thrift"
)

// TestConformance runs the codec conformance kit on the frames in
// testdata/seed: every transport and protocol the Apache Thrift Go library
// writes, and the codec's own error replies.
func TestConformance(t *testing.T) {
	var reqs, resps []codectest.Frame
	var zlib [][]byte
	for _, f := range codectest.ReadFrames(t, filepath.Join("testdata", "seed", "*.bin")) {
		name := strings.TrimSuffix(f.Name, ".bin")
		switch kind := name[strings.LastIndexByte(name, '-')+1:]; kind {
		case "request", "oneway":
			f.Kind = protocols.KindRequest
			if kind == "oneway" {
				f.Kind = protocols.KindOneway
			}
			reqs = append(reqs, f)
		case "response":
			f.Kind = protocols.KindResponse
			resps = append(resps, f)
		case "error", "error_reply":
			f.Kind = protocols.KindError
			resps = append(resps, f)
		default:
			t.Fatalf("testdata frame %s: unknown kind %q", f.Name, kind)
		}
		if strings.Contains(name, "zlib") {
			zlib = append(zlib, f.Bytes)
		}
	}
	codectest.Run(t, codectest.Suite{
		New: func() protocols.Codec {
			c, err := thrift.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Factory:   thrift.New,
		Options:   []byte(`{"transport": "framed", "protocol": "binary", "maxFrameBytes": 1024, "onewayMethods": ["fire"], "upstream": "exclusive"}`),
		Requests:  reqs,
		Responses: resps,
		// A frame length one byte over the default 16 MiB limit.
		Oversize: []byte{0x01, 0x00, 0x00, 0x01, 0x80, 0x01, 0x00, 0x01},
		// Only THeader carries headers; the codec reads them from requests.
		Mutation: true,
		Mutable: func(m *protocols.Message) bool {
			return m.Kind.IsRequest() && len(m.Raw) > 6 && m.Raw[4] == 0x0f && m.Raw[5] == 0xff
		},
		// A zlib payload is inflated, patched and deflated again.
		Inexact: func(frame []byte) bool {
			for _, z := range zlib {
				if bytes.Equal(frame, z) {
					return true
				}
			}
			return false
		},
		Statuses: []uint32{thrift.ExcUnknownMethod, thrift.ExcInternalError},
	})
}
