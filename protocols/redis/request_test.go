package redis

import (
	"bytes"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

func TestDecodeRequestAttributes(t *testing.T) {
	c := newCodec(t, "")
	for _, tc := range []struct {
		name  string
		frame []byte
		attrs string
		class Class
		argc  int
	}{
		{"get", mb("GET", "user:1"), "command=get key=user:1 readonly=true", ClassPlain, 2},
		{"set mixed case", mb("sEt", "k", "v", "EX", "10"), "command=set key=k readonly=false", ClassPlain, 5},
		{"empty key", mb("GET", ""), "command=get key= readonly=true", ClassPlain, 2},
		{"binary key", mb("GET", "a\r\nb\x00"), "command=get key=a\r\nb\x00 readonly=true", ClassPlain, 2},
		{"mget", mb("MGET", "a", "b", "c"), "command=mget key=a readonly=true", ClassSplit, 4},
		{"mset", mb("MSET", "a", "1", "b", "2"), "command=mset key=a readonly=false", ClassSplit, 5},
		{"del", mb("DEL", "a"), "command=del key=a readonly=false", ClassSplit, 2},
		{"ping keyless", mb("PING"), "command=ping readonly=false", ClassLocal, 1},
		{"get without key", mb("GET"), "command=get readonly=true", ClassPlain, 1},
		{"eval keys", mb("EVAL", "return 1", "2", "k1", "k2", "a"), "command=eval key=k1 readonly=false", ClassPlain, 6},
		{"eval no keys", mb("EVAL", "return 1", "0"), "command=eval readonly=false", ClassPlain, 3},
		{"eval bad numkeys", mb("EVAL", "return 1", "x", "k"), "command=eval readonly=false", ClassPlain, 4},
		{"eval numkeys too big", mb("EVAL", "s", "3", "k"), "command=eval readonly=false", ClassPlain, 4},
		{"evalsha_ro", mb("EVALSHA_RO", "abc", "1", "k"), "command=evalsha_ro key=k readonly=true", ClassPlain, 4},
		{"zunionstore dest", mb("ZUNIONSTORE", "dst", "2", "a", "b"), "command=zunionstore key=dst readonly=false", ClassPlain, 5},
		{"zunion numkeys", mb("ZUNION", "2", "a", "b"), "command=zunion key=a readonly=true", ClassPlain, 4},
		{"blmpop", mb("BLMPOP", "0", "1", "q", "LEFT"), "command=blmpop key=q readonly=false", ClassBlocking, 5},
		{"blpop", mb("BLPOP", "q1", "q2", "0"), "command=blpop key=q1 readonly=false", ClassBlocking, 4},
		{"bitop", mb("BITOP", "AND", "dst", "a"), "command=bitop key=dst readonly=false", ClassPlain, 4},
		{"xread", mb("XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"), "command=xread key=s1 readonly=true", ClassPlain, 8},
		{"xread block", mb("XREAD", "BLOCK", "0", "STREAMS", "s1", "$"), "command=xread key=s1 readonly=true", ClassBlocking, 6},
		{"xreadgroup named streams", mb("XREADGROUP", "GROUP", "streams", "block", "NOACK", "STREAMS", "s", ">"), "command=xreadgroup key=s readonly=false", ClassPlain, 8},
		{"xread odd streams", mb("XREAD", "STREAMS", "s1", "s2", "0"), "command=xread readonly=true", ClassPlain, 5},
		{"object encoding", mb("OBJECT", "ENCODING", "k"), "command=object key=k readonly=true", ClassPlain, 3},
		{"object unknown sub", mb("OBJECT", "HELP"), "command=object readonly=false", ClassUnsupported, 2},
		{"xgroup create", mb("XGROUP", "CREATE", "s", "g", "$"), "command=xgroup key=s readonly=false", ClassPlain, 5},
		{"client setname", mb("CLIENT", "SETNAME", "x"), "command=client readonly=false", ClassLocal, 3},
		{"client kill", mb("CLIENT", "KILL", "x"), "command=client readonly=false", ClassUnsupported, 3},
		{"multi", mb("MULTI"), "command=multi readonly=false", ClassTransaction, 1},
		{"watch", mb("WATCH", "a", "b"), "command=watch key=a readonly=false", ClassTransaction, 3},
		{"subscribe", mb("SUBSCRIBE", "ch"), "command=subscribe readonly=false", ClassPubSub, 2},
		{"keys", mb("KEYS", "*"), "command=keys readonly=true", ClassUnsupported, 2},
		{"far key position", mb("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "BLOCK", "5", "NOACK", "COUNT", "2", "COUNT", "3", "COUNT", "4", "STREAMS", "late", "0"), "command=xreadgroup key=late readonly=false", ClassBlocking, 18},
		{"inline", []byte("GET foo\r\n"), "command=get key=foo readonly=true", ClassPlain, 2},
		{"inline bare LF", []byte("set k v\n"), "command=set key=k readonly=false", ClassPlain, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := decodeReq(t, c, tc.frame)
			if msg.Kind != protocols.KindRequest || !bytes.Equal(msg.Raw, tc.frame) {
				t.Fatalf("kind %v raw %q", msg.Kind, msg.Raw)
			}
			if got := attrs(msg); got != tc.attrs {
				t.Errorf("attributes %q, want %q", got, tc.attrs)
			}
			cmd, ok := CommandOf(msg)
			if !ok || cmd.Class != tc.class {
				t.Errorf("CommandOf = %v %v, want class %v", cmd.Name, cmd.Class, tc.class)
			}
			if msg.Marks[markArgc] != tc.argc {
				t.Errorf("argc %d, want %d", msg.Marks[markArgc], tc.argc)
			}
		})
	}
}

func TestDecodeUnknownCommand(t *testing.T) {
	c := newCodec(t, "")
	msg := decodeReq(t, c, mb("FOO.Bar", "k"))
	if got := attrs(msg); got != "command=foo.bar readonly=false" {
		t.Fatalf("attributes %q", got)
	}
	if _, ok := CommandOf(msg); ok {
		t.Fatal("CommandOf found an unknown command")
	}
	long := strings.Repeat("X", 100)
	msg = decodeReq(t, c, mb(long))
	if v, _ := msg.Headers.Get(AttrCommand); v != strings.Repeat("x", maxUnknownName) {
		t.Fatalf("long unknown name attribute %q", v)
	}
}

func TestDecodeHeadersDoNotAliasBuffer(t *testing.T) {
	c := newCodec(t, "")
	frame := mb("GET", "abc")
	msg := decodeReq(t, c, frame)
	for i := range frame {
		frame[i] = 'z'
	}
	if v, _ := msg.Headers.Get(AttrKey); v != "abc" {
		t.Fatalf("key changed with the buffer: %q", v)
	}
}

func TestDecodeRequestEverySplit(t *testing.T) {
	c := newCodec(t, "")
	for _, f := range [][]byte{
		mb("GET", "k"),
		mb("SET", "key", strings.Repeat("v", 100)),
		mb("MGET", "a", "b", "c"),
		mb("GET", ""),
		[]byte("PING\r\n"),
		[]byte("set 'a b' \"c\\nd\"\n"),
		[]byte("\r\n\r\n*0\r\n*-1\r\nGET k\r\n"),
		[]byte("*0\r\n" + string(mb("GET", "k"))),
	} {
		everySplit(t, f, c.Decode)
	}
}

func TestDecodeSeveralFramesInOneBuffer(t *testing.T) {
	c := newCodec(t, "")
	frames := [][]byte{mb("SET", "a", "1"), []byte("GET a\r\n"), mb("MGET", "a", "b"), []byte("\r\n"), mb("PING")}
	buf := bytes.Join(frames, nil)
	var got []string
	var msg protocols.Message
	for len(buf) > 0 {
		n, err := c.Decode(buf, &msg)
		if err != nil || n == 0 {
			t.Fatalf("Decode = %d, %v at %q", n, err, buf)
		}
		got = append(got, string(msg.Raw))
		buf = buf[n:]
	}
	want := []string{string(frames[0]), string(frames[1]), string(frames[2]), string(frames[4])}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("frames %q, want %q", got, want)
	}
}

func TestDecodeBlankOnly(t *testing.T) {
	c := newCodec(t, "")
	var msg protocols.Message
	if n, err := c.Decode([]byte("\r\n  \r\n*0\r\n"), &msg); n != 0 || err != nil {
		t.Fatalf("blank lines alone: %d, %v; want 0, nil (wait)", n, err)
	}
	huge := bytes.Repeat([]byte("\r\n"), MaxInlineBytes)
	if _, err := c.Decode(huge, &msg); err == nil {
		t.Fatal("an endless run of blank lines was accepted")
	}
}

func TestDecodeMalformedRequests(t *testing.T) {
	c := newCodec(t, `{"maxFrameBytes": 1024, "maxArgs": 4}`)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"reply type", "+OK\r\n", "can't start with '+'"},
		{"bulk first", "$3\r\nGET\r\n", "can't start with '$'"},
		{"garbage count", "*x\r\n", "multibulk length"},
		{"plus count", "*+1\r\n", "multibulk length"},
		{"leading zero", "*01\r\n", "leading zeros"},
		{"negative count", "*-2\r\n", "negative"},
		{"too many args", "*5\r\n", "exceeds limit 4"},
		{"huge count", "*99999999999999999999\r\n", "too many digits"},
		{"count without CRLF", "*1\rx", "want CRLF"},
		{"count LF only", "*1\n", "want CRLF"},
		{"not a bulk", "*1\r\n:1\r\n", "want '$'"},
		{"negative bulk", "*1\r\n$-1\r\n", "negative"},
		{"garbage bulk", "*1\r\n$abc\r\n", "bulk length"},
		{"bulk too long", "*1\r\n$2000\r\n", "exceeds the 1024-byte frame limit"},
		{"missing CRLF", "*1\r\n$3\r\nGETxx", "want CRLF"},
		{"short CRLF", "*1\r\n$3\r\nGET\rx", "want CRLF"},
		{"inline NUL", "GET a\x00b\r\n", "NUL"},
		{"inline unbalanced", "GET \"abc\r\n", "unbalanced"},
		{"inline quote then text", "GET \"a\"b\r\n", "closing quote"},
		{"inline single unbalanced", "GET 'a\r\n", "unbalanced"},
		{"inline too many args", "a b c d e\r\n", "exceeds limit 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msg protocols.Message
			n, err := c.Decode([]byte(tc.in), &msg)
			if err == nil || n != 0 || !strings.HasPrefix(err.Error(), "redis: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode(%q) = %d, %v; want an error with %q", tc.in, n, err, tc.want)
			}
			if msg.Raw != nil || msg.Headers.Len() != 0 {
				t.Fatal("a failed Decode left the message set")
			}
		})
	}
	var msg protocols.Message
	long := bytes.Repeat([]byte("a"), MaxInlineBytes+1)
	if _, err := c.Decode(long, &msg); err == nil || !strings.Contains(err.Error(), "inline command longer") {
		t.Fatalf("endless inline line: %v", err)
	}
	if n, err := c.Decode(long[:MaxInlineBytes], &msg); n != 0 || err != nil {
		t.Fatalf("inline line at the limit without its end: %d, %v; want to wait", n, err)
	}
	// Many small arguments over the frame limit.
	c2 := newCodec(t, `{"maxFrameBytes": 100}`)
	if _, err := c2.Decode(mb("MGET", strings.Repeat("k", 40), strings.Repeat("k", 40), strings.Repeat("k", 40)), &msg); err == nil {
		t.Fatal("a frame over maxFrameBytes was accepted")
	}
}

func TestSplitInline(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string
		err  string
	}{
		{"", nil, ""},
		{"   \t ", nil, ""},
		{"GET foo", []string{"GET", "foo"}, ""},
		{"  SET   a\tb  ", []string{"SET", "a", "b"}, ""},
		{"a\vb", []string{"a\vb"}, ""},
		{"\va", []string{"a"}, ""},
		{`SET "a b" c`, []string{"SET", "a b", "c"}, ""},
		{`"\x41\x4a\x4" "\n\r\t\b\a\z\\\""`, []string{"AJx4", "\n\r\t\b\az\\\""}, ""},
		{`'it\'s' 'a\nb'`, []string{"it's", `a\nb`}, ""},
		{`a"b c"`, []string{"ab c"}, ""},
		{`a'b c'`, []string{"ab c"}, ""},
		{`""`, []string{""}, ""},
		{`"a"`, []string{"a"}, ""},
		{`"a"b`, nil, "closing quote"},
		{`'a'b`, nil, "closing quote"},
		{`"a`, nil, "unbalanced"},
		{`"a\`, nil, "unbalanced"},
		{`'a`, nil, "unbalanced"},
		{"a\x00b", nil, "NUL"},
	} {
		got, err := splitInline(nil, []byte(tc.line))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("splitInline(%q) = %q, %v; want error %q", tc.line, got, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("splitInline(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
			continue
		}
		for i := range got {
			if string(got[i]) != tc.want[i] {
				t.Errorf("splitInline(%q)[%d] = %q, want %q", tc.line, i, got[i], tc.want[i])
			}
		}
	}
}

func TestArgs(t *testing.T) {
	for _, in := range [][]byte{mb("SET", "a", "b c"), []byte("SET a \"b c\"\r\n"), []byte("SET a 'b c'\n")} {
		args, err := Args(nil, in)
		if err != nil || len(args) != 3 || string(args[0]) != "SET" || string(args[1]) != "a" || string(args[2]) != "b c" {
			t.Errorf("Args(%q) = %q, %v", in, args, err)
		}
	}
	for _, in := range []string{"", "*2\r\n$3\r\nGET\r\n", "*1\r\n$3\r\nGET\r\nX", "GET a\r\nGET b\r\n", "*0\r\n", "*1\r\n$9\r\nGET\r\n"} {
		if _, err := Args(nil, []byte(in)); err == nil {
			t.Errorf("Args(%q) accepted it", in)
		}
	}
}
