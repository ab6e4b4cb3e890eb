package redis

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols"
)

var update = flag.Bool("update", false, "rewrite testdata/captured and testdata/seed from a real redis-server")

// server is a redis-server started for one test on a Unix socket.
type server struct {
	t    *testing.T
	sock string
}

// startServer starts redis-server with the given extra arguments, or
// skips the test when it is not installed.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not on PATH (apt-get install redis-server): skipping the real-server test")
	}
	dir, err := os.MkdirTemp("", "mmredis") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	cmd := exec.Command(bin, append([]string{"--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
		"--enable-debug-command", "local", "--dir", dir}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
	}
	return &server{t, sock}
}

// client is a connection to the server that decodes replies with the
// codec.
type client struct {
	t     *testing.T
	codec *Codec
	nc    net.Conn
	r     *bufio.Reader
	buf   []byte
}

func (s *server) dial() *client {
	nc, err := net.Dial("unix", s.sock)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { nc.Close() })
	return &client{t: s.t, codec: newCodec(s.t, ""), nc: nc, r: bufio.NewReader(nc)}
}

// do sends req and returns the reply frame, read in small pieces so the
// decoder sees partial frames.
func (c *client) do(req []byte) (protocols.Message, []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(req); err != nil {
		c.t.Fatal(err)
	}
	return c.read()
}

func (c *client) read() (protocols.Message, []byte) {
	c.t.Helper()
	var msg protocols.Message
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, err := c.codec.DecodeResponse(c.buf, &msg)
		if err != nil {
			c.t.Fatalf("DecodeResponse(%q): %v", c.buf, err)
		}
		if n > 0 {
			frame := append([]byte(nil), c.buf[:n]...)
			c.buf = c.buf[n:]
			msg.Raw = frame
			return msg, frame
		}
		chunk := make([]byte, 7)
		if len(c.buf) > 256 {
			chunk = make([]byte, 16<<10) // a long reply: see README, Limits
		}
		m, err := c.r.Read(chunk)
		if err != nil {
			c.t.Fatalf("reading a reply: %v (have %q)", err, c.buf)
		}
		c.buf = append(c.buf, chunk[:m]...)
	}
}

// value is a reply parsed for the tests: string, int64, nil, []value, or
// error.
type value any

// parseValue parses the RESP2/RESP3 reply frame with a recursive parser
// independent of the codec's iterative one.
func parseValue(b []byte) (value, []byte) {
	line, rest, _ := bytes.Cut(b, []byte("\r\n"))
	t, body := line[0], string(line[1:])
	switch t {
	case '+', '(', ',':
		return body, rest
	case '-':
		return fmt.Errorf("%s", body), rest
	case ':':
		n, _ := strconv.ParseInt(body, 10, 64)
		return n, rest
	case '_':
		return nil, rest
	case '#':
		return body == "t", rest
	case '$', '=', '!':
		n, _ := strconv.Atoi(body)
		if n < 0 {
			return nil, rest
		}
		return string(rest[:n]), rest[n+2:]
	case '*', '~', '>', '%', '|':
		n, _ := strconv.Atoi(body)
		if t == '%' || t == '|' {
			n *= 2
		}
		var out []value
		for range max(n, 0) {
			var v value
			v, rest = parseValue(rest)
			out = append(out, v)
		}
		if t == '|' {
			return parseValue(rest)
		}
		return out, rest
	}
	panic(fmt.Sprintf("parseValue: type %q", t))
}

// TestTableAgainstServer checks the command table against the server's
// COMMAND output: every command it knows is in the table, with the same
// arity (or a looser one, for commands later versions extended), the
// same readonly flag and the same key run; blocking commands are
// blocking; and COMMAND GETKEYS agrees with KeyPositions.
func TestTableAgainstServer(t *testing.T) {
	cl := startServer(t).dial()
	_, frame := cl.do(mb("COMMAND"))
	all, _ := parseValue(frame)
	seen := map[string]bool{}
	var check func(info []value)
	check = func(info []value) {
		name := info[0].(string)
		seen[name] = true
		arity, flags := int(info[1].(int64)), info[2].([]value)
		first, last, step := int(info[3].(int64)), int(info[4].(int64)), int(info[5].(int64))
		has := func(f string) bool { return slices.Contains(flags, value(f)) }
		cmd, ok := Lookup([]byte(name))
		if len(info) > 9 {
			for _, sub := range info[9].([]value) {
				if _, listed := Lookup([]byte(sub.([]value)[0].(string))); listed {
					check(sub.([]value))
				}
			}
		}
		switch {
		case !ok:
			t.Errorf("%s is not in the table", name)
			return
		case cmd.Class == ClassUnsupported:
			return
		case cmd.Arity != arity && !(cmd.Arity < 0 && -cmd.Arity <= abs(arity)):
			t.Errorf("%s: arity %d, server says %d", name, cmd.Arity, arity)
		}
		if cmd.Readonly != has("readonly") {
			t.Errorf("%s: readonly %v, server flags %v", name, cmd.Readonly, flags)
		}
		if has("blocking") && cmd.Class != ClassBlocking && !cmd.Keys.Streams {
			t.Errorf("%s: server flags it blocking, class %v", name, cmd.Class)
		}
		if k := cmd.Keys; first != 0 && (k.First != first || k.Last != last || k.Step != step) {
			t.Errorf("%s: keys %d,%d,%d, server says %d,%d,%d", name, k.First, k.Last, k.Step, first, last, step)
		}
		if first == 0 && cmd.Keys.First != 0 && !has("pubsub") {
			t.Errorf("%s: keys from %d, server says none", name, cmd.Keys.First)
		}
	}
	for _, info := range all.([]value) {
		check(info.([]value))
	}
	for _, c := range commands {
		if !seen[c.Name] && c.Class != ClassUnsupported {
			t.Logf("%s is not known to this redis-server (newer than it)", c.Name)
		}
	}

	for _, args := range [][]string{
		{"EVAL", "return 1", "2", "a", "b", "c"},
		{"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"},
		{"ZINTER", "2", "a", "b"},
		{"SINTERCARD", "2", "a", "b", "LIMIT", "1"},
		{"LMPOP", "2", "a", "b", "LEFT"},
		{"BLMPOP", "0", "2", "a", "b", "LEFT"},
		{"BZMPOP", "0", "1", "a", "MIN"},
		{"XREAD", "COUNT", "1", "BLOCK", "1", "STREAMS", "a", "b", "0", "0"},
		{"XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "a", ">"},
		{"MSET", "a", "1", "b", "2"},
		{"BLPOP", "a", "b", "0"},
		{"BITOP", "OR", "d", "a", "b"},
		{"OBJECT", "ENCODING", "k"},
		{"XINFO", "STREAM", "s"},
		{"MEMORY", "USAGE", "k"},
		{"GEOSEARCHSTORE", "d", "s", "FROMMEMBER", "m", "BYRADIUS", "1", "km"},
	} {
		_, frame := cl.do(mb(append([]string{"COMMAND", "GETKEYS"}, args...)...))
		v, _ := parseValue(frame)
		var want []string
		for _, k := range v.([]value) {
			want = append(want, k.(string))
		}
		b := make([][]byte, len(args))
		for i := range args {
			b[i] = []byte(args[i])
		}
		msg := decodeReq(t, newCodec(t, ""), mb(args...))
		cmd, _ := CommandOf(msg)
		var got []string
		for _, p := range cmd.KeyPositions(nil, b) {
			got = append(got, args[p])
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%v: keys %q, server says %q", args, got, want)
		}
		if k, _ := msg.Headers.Get(AttrKey); len(want) > 0 && k != want[0] {
			t.Errorf("%v: key attribute %q, server's first key %q", args, k, want[0])
		}
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// serverSession is a conversation with redis-server whose replies are
// captured into testdata/captured (names: reply-<name>.bin).
var serverSession = []struct {
	name string
	req  []byte
	kind protocols.Kind
}{
	{"simple", mb("SET", "k", "hello"), protocols.KindResponse},
	{"bulk", mb("GET", "k"), protocols.KindResponse},
	{"null-bulk", mb("GET", "missing"), protocols.KindResponse},
	{"integer", mb("INCR", "n"), protocols.KindResponse},
	{"error", mb("INCR", "k"), protocols.KindError},
	{"wrongtype", mb("LPUSH", "k", "x"), protocols.KindError},
	{"mget", mb("MGET", "k", "missing", "n"), protocols.KindResponse},
	{"empty-array", mb("LRANGE", "nolist", "0", "-1"), protocols.KindResponse},
	{"inline", []byte("ECHO \"a b\"\r\n"), protocols.KindResponse},
	{"hset", mb("HSET", "h", "f1", "v1", "f2", "v2"), protocols.KindResponse},
	{"hgetall", mb("HGETALL", "h"), protocols.KindResponse},
	{"zadd", mb("ZADD", "z", "1.5", "a", "2", "b"), protocols.KindResponse},
	{"zscore", mb("ZSCORE", "z", "a"), protocols.KindResponse},
	{"zrange-withscores", mb("ZRANGE", "z", "0", "-1", "WITHSCORES"), protocols.KindResponse},
	{"xadd", mb("XADD", "s", "1-1", "f", "v"), protocols.KindResponse},
	{"xrange", mb("XRANGE", "s", "-", "+"), protocols.KindResponse},
	{"eval-nested", mb("EVAL", "return {1,{2,{3,'x'}},redis.status_reply('OK'),redis.error_reply('E')}", "0"), protocols.KindResponse},
	{"multi", mb("MULTI"), protocols.KindResponse},
	{"queued", mb("GET", "k"), protocols.KindResponse},
	{"exec", mb("EXEC"), protocols.KindResponse},
	{"hello3", mb("HELLO", "3"), protocols.KindResponse},
	{"resp3-map", mb("HGETALL", "h"), protocols.KindResponse},
	{"resp3-null", mb("GET", "missing"), protocols.KindResponse},
	{"resp3-double", mb("ZSCORE", "z", "a"), protocols.KindResponse},
	{"resp3-set", mb("SMEMBERS", "noset"), protocols.KindResponse},
	{"resp3-verbatim", mb("DEBUG", "PROTOCOL", "verbatim"), protocols.KindResponse},
	{"resp3-bignum", mb("DEBUG", "PROTOCOL", "bignum"), protocols.KindResponse},
	{"resp3-true", mb("DEBUG", "PROTOCOL", "true"), protocols.KindResponse},
	{"resp3-false", mb("DEBUG", "PROTOCOL", "false"), protocols.KindResponse},
	{"resp3-double-debug", mb("DEBUG", "PROTOCOL", "double"), protocols.KindResponse},
	{"resp3-debug-map", mb("DEBUG", "PROTOCOL", "map"), protocols.KindResponse},
	{"resp3-debug-set", mb("DEBUG", "PROTOCOL", "set"), protocols.KindResponse},
	{"resp3-attribute", mb("DEBUG", "PROTOCOL", "attrib"), protocols.KindResponse},
	{"resp3-error", mb("INCR", "k"), protocols.KindError},
	{"resp3-subscribe-push", mb("SUBSCRIBE", "ch"), protocols.KindHeartbeatReply},
}

// TestRepliesFromServer decodes a real server's reply to every command
// of serverSession (in RESP2, then RESP3 after HELLO 3), and keeps the
// frames in testdata/captured with -update.
func TestRepliesFromServer(t *testing.T) {
	cl := startServer(t).dial()
	dir := filepath.Join("testdata", "captured")
	for _, st := range serverSession {
		msg, frame := cl.do(st.req)
		if msg.Kind != st.kind {
			t.Errorf("%s: %q decoded as %v, want %v", st.name, frame, msg.Kind, st.kind)
		}
		v, rest := parseValue(frame)
		if len(rest) != 0 {
			t.Errorf("%s: the reference parser left %q of %q", st.name, rest, frame)
		}
		if _, isErr := v.(error); isErr != (st.kind == protocols.KindError) {
			t.Errorf("%s: reference parser says error=%v", st.name, isErr)
		}
		path := filepath.Join(dir, "reply-"+st.name+".bin")
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, frame, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
