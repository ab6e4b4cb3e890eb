package dubbo

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
// checks that Encode round-trips them. Seeds: every frame in testdata/
// (seed, hessian2, captured); go test adds testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path == filepath.Join("testdata", "fuzz") {
			return filepath.SkipDir
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
	c := &Codec{maxBody: DefaultMaxBodyBytes}
	set := []protocols.Header{{Key: "x-fuzz", Value: "1"}}

	f.Fuzz(func(t *testing.T, buf []byte) {
		var msg protocols.Message
		n, err := c.Decode(buf, &msg)
		if err != nil {
			if n != 0 || !strings.HasPrefix(err.Error(), "dubbo: ") {
				t.Fatalf("Decode = %d, %q", n, err)
			}
			return
		}
		if n == 0 {
			return
		}
		if n <= headerLen || n > len(buf) {
			t.Fatalf("Decode = %d of %d bytes", n, len(buf))
		}
		frame := append([]byte(nil), buf[:n]...)
		svc, _ := msg.Headers.Get("service")
		method, _ := msg.Headers.Get("method")
		before := append([]protocols.Header(nil), msg.Headers.All()...)

		// ID rewrite changes the ID only.
		out, err := c.Encode(nil, &msg, 0xfeedface, nil)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		if len(out) != n || !bytes.Equal(out[:4], frame[:4]) || !bytes.Equal(out[12:], frame[12:]) || frameID(out) != 0xfeedface {
			t.Fatalf("ID rewrite changed more than the ID")
		}

		// Mutation.
		out, err = c.Encode(nil, &msg, 0xfeedface, set)
		if err != nil {
			if msg.Kind == protocols.KindResponse && strings.HasPrefix(err.Error(), "dubbo: ") {
				return // response bodies are walked only now
			}
			t.Fatalf("Encode with set (%v): %v", msg.Kind, err)
		}
		var again protocols.Message
		if m, err := c.Decode(out, &again); err != nil || m != len(out) {
			if msg.Kind == protocols.KindResponse && m == 0 && err == nil {
				return
			}
			t.Fatalf("re-decode of %v = %d of %d, %v", msg.Kind, m, len(out), err)
		}
		svc2, _ := again.Headers.Get("service")
		method2, _ := again.Headers.Get("method")
		if again.Kind != msg.Kind || again.ID != 0xfeedface || svc2 != svc || method2 != method {
			t.Fatalf("re-decoded %v %x %q %q; want %v %q %q", again.Kind, again.ID, svc2, method2, msg.Kind, svc, method)
		}
		if msg.Kind.IsRequest() {
			var want []protocols.Header
			for _, h := range before {
				if h.Key != "x-fuzz" {
					want = append(want, h)
				}
			}
			want = append(want, set...)
			if got := again.Headers.All(); !sameHeaders(got, want) {
				t.Fatalf("headers after mutation\n got %q\nwant %q", got, want)
			}
		}
	})
}
