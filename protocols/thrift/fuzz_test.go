package thrift

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// FuzzDecode feeds arbitrary bytes to Decode and, for frames it accepts,
// checks that Encode round-trips them and ErrorReply answers them. Seeds:
// every frame in testdata/seed; go test adds testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	err := filepath.WalkDir(filepath.Join("testdata", "seed"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".bin") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			f.Add(b)
		}
		return nil
	})
	if err != nil {
		f.Fatal(err)
	}
	c := &Codec{max: 1 << 20}
	set := []protocols.Header{{Key: "x-fuzz", Value: "1"}}

	f.Fuzz(func(t *testing.T, buf []byte) {
		var msg protocols.Message
		n, err := c.Decode(buf, &msg)
		if err != nil {
			if n != 0 || !strings.HasPrefix(err.Error(), "thrift: ") {
				t.Fatalf("Decode = %d, %q", n, err)
			}
			return
		}
		if n == 0 {
			return
		}
		if n > len(buf) || len(msg.Raw) != n {
			t.Fatalf("Decode = %d of %d bytes", n, len(buf))
		}
		before := append([]protocols.Header(nil), msg.Headers.All()...)

		for _, s := range [][]protocols.Header{nil, set} {
			out, err := c.Encode(nil, &msg, 0xfeedface, s)
			if err != nil {
				if strings.HasPrefix(err.Error(), "thrift: encode: THeader header block") {
					continue // too large to grow
				}
				t.Fatalf("Encode: %v", err)
			}
			var again protocols.Message
			if m, err := c.Decode(out, &again); err != nil || m != len(out) {
				t.Fatalf("re-decode = %d of %d, %v", m, len(out), err)
			}
			if again.Kind != msg.Kind || again.ID != 0xfeedface {
				t.Fatalf("re-decoded %v %x; want %v", again.Kind, again.ID, msg.Kind)
			}
			if s == nil && msg.Marks[markLayout]&layoutZlib == 0 && len(out) == n &&
				!bytes.Equal(out[msg.Marks[markSeq]+msg.Marks[markSeqLen]:], buf[msg.Marks[markSeq]+msg.Marks[markSeqLen]:n]) {
				t.Fatal("ID rewrite changed the bytes after the seqid")
			}
			if msg.Kind.IsRequest() {
				want := before
				if s != nil && msg.Marks[markLayout]&0xf == transHeader {
					want = append(append([]protocols.Header(nil), before...), set...)
				}
				if got := again.Headers.All(); !sameHeaders(got, want) {
					t.Fatalf("headers after encode\n got %q\nwant %q", got, want)
				}
			}
		}
		if msg.Kind.IsRequest() {
			out := c.ErrorReply(nil, &msg, protocols.ReasonNoRoute, "no route")
			var reply protocols.Message
			if m, err := c.Decode(out, &reply); err != nil || m != len(out) || reply.Kind != protocols.KindError || reply.ID != msg.ID {
				t.Fatalf("error reply re-decode = %d of %d, %v, %v", m, len(out), err, reply.Kind)
			}
		}
	})
}

// sameHeaders compares as sets: order may differ after a rebuild.
func sameHeaders(a, b []protocols.Header) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[protocols.Header]int{}
	for _, h := range a {
		m[h]++
	}
	for _, h := range b {
		m[h]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
