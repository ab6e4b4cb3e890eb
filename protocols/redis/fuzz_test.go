package redis

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// addSeeds adds every testdata/<dir>/*.bin to f.
func addSeeds(f *testing.F, dirs ...string) {
	for _, dir := range dirs {
		paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.bin"))
		if err != nil || len(paths) == 0 {
			f.Fatalf("no seeds in testdata/%s: %v", dir, err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to Decode and checks, for requests it
// accepts, that Args agrees with the attributes, that Local and the split
// helpers don't fail on them, and that the frame is a prefix of buf.
// Seeds: testdata/seed; go test adds testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	addSeeds(f, "seed")
	c := &Codec{max: 1 << 16, maxArgs: 1 << 10, password: "pw", username: "default", resp3: true}
	f.Fuzz(func(t *testing.T, buf []byte) {
		var msg protocols.Message
		n, err := c.Decode(buf, &msg)
		if err != nil {
			if n != 0 || !strings.HasPrefix(err.Error(), "redis: ") {
				t.Fatalf("Decode = %d, %q", n, err)
			}
			return
		}
		if n == 0 {
			return
		}
		if n > len(buf) || !bytes.HasSuffix(buf[:n], msg.Raw) || msg.Kind != protocols.KindRequest {
			t.Fatalf("Decode = %d of %d bytes, raw %q", n, len(buf), msg.Raw)
		}
		args, err := Args(nil, msg.Raw)
		if err != nil || len(args) != msg.Marks[markArgc] {
			t.Fatalf("Args(%q) = %d args, %v; Decode saw %d", msg.Raw, len(args), err, msg.Marks[markArgc])
		}
		cmd, known := CommandOf(&msg)
		if key, ok := msg.Headers.Get(AttrKey); ok {
			pos := cmd.KeyPositions(nil, args)
			if !known || len(pos) == 0 || string(args[pos[0]]) != key {
				t.Fatalf("key attribute %q, KeyPositions %v of %q", key, pos, args)
			}
		}
		var s Session
		for range 2 {
			out, act := c.Local(nil, &s, &msg)
			if act != Forward {
				var reply protocols.Message
				if m, err := c.DecodeResponse(out, &reply); err != nil || m != len(out) {
					t.Fatalf("Local reply %q does not decode: %d, %v", out, m, err)
				}
			}
			s.Authenticated = true
		}
		if known && cmd.Class == ClassSplit && cmd.ArityOK(len(args)) {
			pos := cmd.KeyPositions(nil, args)
			part := cmd.AppendPart(nil, args, pos)
			var again protocols.Message
			if m, err := c.Decode(part, &again); err != nil || m != len(part) || again.Marks[markArgc] != len(args) {
				t.Fatalf("the whole part %q of %q does not decode alike: %d, %v", part, args, m, err)
			}
		}
	})
}

// FuzzDecodeResponse feeds arbitrary bytes to DecodeResponse and checks
// that a frame it accepts is a prefix of buf that the split helpers read
// alike. Seeds: testdata/captured (real redis-server replies).
func FuzzDecodeResponse(f *testing.F) {
	addSeeds(f, "captured")
	c := &Codec{max: 1 << 16}
	f.Fuzz(func(t *testing.T, buf []byte) {
		var msg protocols.Message
		n, err := c.DecodeResponse(buf, &msg)
		if err != nil {
			if n != 0 || !strings.HasPrefix(err.Error(), "redis: ") {
				t.Fatalf("DecodeResponse = %d, %q", n, err)
			}
			return
		}
		if n == 0 {
			if len(buf) > 0 {
				// Every strict prefix of a whole frame is incomplete too.
				if m, err := c.DecodeResponse(buf[:len(buf)-1], &msg); m != 0 || err != nil {
					t.Fatalf("prefix of an incomplete frame: %d, %v", m, err)
				}
			}
			return
		}
		if n > len(buf) || !bytes.Equal(msg.Raw, buf[:n]) {
			t.Fatalf("DecodeResponse = %d of %d", n, len(buf))
		}
		if _, err := valueOf(msg.Raw); err != nil {
			t.Fatalf("valueOf(%q): %v", msg.Raw, err)
		}
		if m, err := c.DecodeResponse(buf[:n-1], &msg); m != 0 || err != nil {
			t.Fatalf("prefix of a whole frame: %d, %v", m, err)
		}
	})
}
