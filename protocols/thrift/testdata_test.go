package thrift

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

var update = flag.Bool("update", false, "rewrite testdata/seed/*.bin from seedFrames")

// seedFrames are frames written by the Apache Thrift Go library (and the
// codec's own error replies), kept in testdata/seed/: they seed the fuzzer
// and pin what the library writes. Names are combo-kind.
func seedFrames(t testing.TB) map[string][]byte {
	c := newCodec(t, "")
	out := map[string][]byte{}
	for _, cb := range combos {
		for _, mt := range messageTypes {
			m := call{method: "sayHello", typ: mt.typ, seq: 300}
			if mt.kind.IsRequest() {
				m.service = "Greeter"
			}
			if cb.trans == "header" {
				m.headers = map[string]string{"X-User-Id": "u-1"}
			}
			out[cb.String()+"-"+mt.kind.String()] = build(t, cb, m)
		}
		req := decode(t, c, out[cb.String()+"-request"])
		out[cb.String()+"-error_reply"] = c.ErrorReply(nil, req, protocols.ReasonNoRoute, "metamesh: no route")
	}
	return out
}

func TestSeedFrames(t *testing.T) {
	dir := filepath.Join("testdata", "seed")
	c := newCodec(t, "")
	for name, b := range seedFrames(t) {
		path := filepath.Join(dir, name+".bin")
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s is stale or missing (%v): run go test ./protocols/thrift -run TestSeedFrames -update", path, err)
			continue
		}
		decode(t, c, got)
	}
}
