package redis

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// seedRequests are requests in every form Decode takes, kept in
// testdata/seed/request-*.bin: they seed FuzzDecode.
var seedRequests = map[string][]byte{
	"get":           mb("GET", "user:1"),
	"set-100":       mb("SET", "k", strings.Repeat("v", 100)),
	"mget-10":       mb("MGET", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"),
	"mset":          mb("MSET", "a", "1", "b", "2"),
	"eval":          mb("EVAL", "return redis.call('get', KEYS[1])", "1", "k"),
	"xreadgroup":    mb("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"),
	"hello3-auth":   mb("HELLO", "3", "AUTH", "default", "pw", "SETNAME", "app"),
	"object":        mb("OBJECT", "ENCODING", "k"),
	"binary":        mb("SET", "k\r\n", "\x00\xff"),
	"inline-ping":   []byte("PING\r\n"),
	"inline-quoted": []byte("SET \"a b\\x41\" 'c\\'d'\r\n"),
	"inline-lf":     []byte("get k\n"),
	"blank-lines":   []byte("\r\n\n*0\r\n*-1\r\nPING\r\n"),
}

// TestSeedFrames keeps testdata/seed in step with seedRequests (and
// checks every captured reply still decodes); -update rewrites it.
func TestSeedFrames(t *testing.T) {
	c := newCodec(t, "")
	dir := filepath.Join("testdata", "seed")
	for name, b := range seedRequests {
		path := filepath.Join(dir, "request-"+name+".bin")
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
			t.Errorf("%s is stale or missing (%v): run go test ./protocols/redis -run 'TestSeedFrames|TestRepliesFromServer' -update", path, err)
			continue
		}
		decodeReq(t, c, got)
	}
	captured, _ := filepath.Glob(filepath.Join("testdata", "captured", "*.bin"))
	if len(captured) < len(serverSession) {
		t.Errorf("testdata/captured holds %d replies, want %d: run the server test with -update", len(captured), len(serverSession))
	}
	for _, path := range captured {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var msg protocols.Message
		if n, err := c.DecodeResponse(b, &msg); err != nil || n != len(b) {
			t.Errorf("%s: DecodeResponse = %d of %d, %v", path, n, len(b), err)
		}
	}
}
