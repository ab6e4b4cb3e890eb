package redis

import (
	"bytes"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// replyCases are one reply of every type, with the kind and status it
// decodes to.
var replyCases = []struct {
	name   string
	in     string
	kind   protocols.Kind
	status uint32
}{
	{"simple string", "+OK\r\n", protocols.KindResponse, StatusOK},
	{"empty simple string", "+\r\n", protocols.KindResponse, StatusOK},
	{"error", "-ERR unknown command 'foo'\r\n", protocols.KindError, StatusError},
	{"wrongtype", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n", protocols.KindError, StatusError},
	{"loading", "-LOADING Redis is loading the dataset in memory\r\n", protocols.KindError, StatusUnavailable},
	{"busy", "-BUSY Redis is busy running a script.\r\n", protocols.KindError, StatusUnavailable},
	{"readonly", "-READONLY You can't write against a read only replica.\r\n", protocols.KindError, StatusUnavailable},
	{"oom", "-OOM command not allowed when used memory > 'maxmemory'.\r\n", protocols.KindError, StatusServerError},
	{"bare code", "-MASTERDOWN\r\n", protocols.KindError, StatusUnavailable},
	{"integer", ":1000\r\n", protocols.KindResponse, StatusOK},
	{"negative integer", ":-9223372036854775808\r\n", protocols.KindResponse, StatusOK},
	{"bulk", "$5\r\nhello\r\n", protocols.KindResponse, StatusOK},
	{"binary bulk", "$4\r\n\r\n\r\n\r\n", protocols.KindResponse, StatusOK},
	{"empty bulk", "$0\r\n\r\n", protocols.KindResponse, StatusOK},
	{"null bulk", "$-1\r\n", protocols.KindResponse, StatusOK},
	{"array", "*2\r\n$1\r\na\r\n:1\r\n", protocols.KindResponse, StatusOK},
	{"empty array", "*0\r\n", protocols.KindResponse, StatusOK},
	{"null array", "*-1\r\n", protocols.KindResponse, StatusOK},
	{"nested", "*2\r\n*2\r\n+a\r\n*1\r\n$-1\r\n*0\r\n", protocols.KindResponse, StatusOK},
	{"array of errors", "*2\r\n-ERR a\r\n+OK\r\n", protocols.KindResponse, StatusOK},
	{"resp3 null", "_\r\n", protocols.KindResponse, StatusOK},
	{"boolean true", "#t\r\n", protocols.KindResponse, StatusOK},
	{"boolean false", "#f\r\n", protocols.KindResponse, StatusOK},
	{"double", ",3.14\r\n", protocols.KindResponse, StatusOK},
	{"double exponent", ",1.5e-10\r\n", protocols.KindResponse, StatusOK},
	{"double inf", ",-inf\r\n", protocols.KindResponse, StatusOK},
	{"double nan", ",nan\r\n", protocols.KindResponse, StatusOK},
	{"big number", "(3492890328409238509324850943850943825024385\r\n", protocols.KindResponse, StatusOK},
	{"blob error", "!21\r\nSYNTAX invalid syntax\r\n", protocols.KindError, StatusError},
	{"blob error busy", "!4\r\nBUSY\r\n", protocols.KindError, StatusUnavailable},
	{"verbatim", "=15\r\ntxt:Some string\r\n", protocols.KindResponse, StatusOK},
	{"map", "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", protocols.KindResponse, StatusOK},
	{"empty map", "%0\r\n", protocols.KindResponse, StatusOK},
	{"set", "~3\r\n+a\r\n+b\r\n+c\r\n", protocols.KindResponse, StatusOK},
	{"push", ">3\r\n+message\r\n+ch\r\n$2\r\nhi\r\n", protocols.KindHeartbeatReply, StatusOK},
	{"attribute then reply", "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n", protocols.KindResponse, StatusOK},
	{"attribute then error", "|1\r\n+a\r\n+b\r\n-ERR x\r\n", protocols.KindError, StatusError},
	{"empty attribute then reply", "|0\r\n:1\r\n", protocols.KindResponse, StatusOK},
	{"attribute inside array", "*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n", protocols.KindResponse, StatusOK},
	{"map of aggregates", "%1\r\n~1\r\n#t\r\n%1\r\n_\r\n*0\r\n", protocols.KindResponse, StatusOK},
}

func TestDecodeResponseTypes(t *testing.T) {
	c := newCodec(t, "")
	for _, tc := range replyCases {
		t.Run(tc.name, func(t *testing.T) {
			var msg protocols.Message
			buf := []byte(tc.in + "+NEXT\r\n") // a following reply is not part of it
			n, err := c.DecodeResponse(buf, &msg)
			if err != nil || n != len(tc.in) {
				t.Fatalf("DecodeResponse = %d, %v; want %d", n, err, len(tc.in))
			}
			if msg.Kind != tc.kind || msg.Status != tc.status || string(msg.Raw) != tc.in {
				t.Fatalf("kind %v status %d raw %q; want %v %d", msg.Kind, msg.Status, msg.Raw, tc.kind, tc.status)
			}
			everySplit(t, []byte(tc.in), c.DecodeResponse)
		})
	}
}

func TestClassify(t *testing.T) {
	c := newCodec(t, "")
	want := map[uint32]protocols.ResponseClass{StatusOK: protocols.ClassOK, StatusError: protocols.ClassOK,
		StatusUnavailable: protocols.ClassUnavailable, StatusServerError: protocols.ClassServerError}
	for _, tc := range replyCases {
		var msg protocols.Message
		if _, err := c.DecodeResponse([]byte(tc.in), &msg); err != nil {
			t.Fatal(err)
		}
		if got := protocols.Classify(c, &msg); got != want[tc.status] {
			t.Errorf("%s: class %v, want %v", tc.name, got, want[tc.status])
		}
	}
}

func TestDecodeResponseMalformed(t *testing.T) {
	c := newCodec(t, `{"maxFrameBytes": 1024}`)
	for _, tc := range []struct{ name, in, want string }{
		{"unknown type", "?x\r\n", "unknown reply type"},
		{"inline text", "OK\r\n", "unknown reply type"},
		{"bare LF", "+OK\n", "line feed"},
		{"CR inside", "+O\rK\r\n", "want CRLF"},
		{"bad integer", ":12a\r\n", "integer"},
		{"empty integer", ":\r\n", "integer"},
		{"integer overflow", ":9223372036854775808\r\n", "overflows"},
		{"negative bulk", "$-2\r\n", "negative"},
		{"bulk too long", "$2000\r\n", "frame limit"},
		{"bulk no CRLF", "$1\r\nab\r\n", "want CRLF"},
		{"null blob error", "!-1\r\n", "negative"},
		{"short verbatim", "=2\r\nab\r\n", "no format"},
		{"verbatim without colon", "=5\r\nabcde\r\n", "format"},
		{"bad boolean", "#x\r\n", "boolean"},
		{"bad null", "_x\r\n", "CRLF"},
		{"bad double", ",1.2.3\r\n", "double"},
		{"empty double", ",\r\n", "double"},
		{"bad big number", "(12x\r\n", "big number"},
		{"negative map", "%-1\r\n", "negative"},
		{"null set", "~-1\r\n", "negative"},
		{"huge array", "*1000\r\n", "frame limit"},
		{"huge map", "%9223372036854775807\r\n", "frame limit"},
		{"streamed aggregate", "*?\r\n", "aggregate length"},
		{"line too long", "+" + strings.Repeat("a", 1100), "frame limit"},
		{"many small values", "*300\r\n" + strings.Repeat(":1\r\n", 300), "frame limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msg protocols.Message
			n, err := c.DecodeResponse([]byte(tc.in), &msg)
			if err == nil || n != 0 || !strings.HasPrefix(err.Error(), "redis: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeResponse(%q) = %d, %v; want an error with %q", tc.in, n, err, tc.want)
			}
		})
	}
}

func TestDecodeResponseDepth(t *testing.T) {
	c := newCodec(t, "")
	deep := func(d int) []byte {
		return append(bytes.Repeat([]byte("*1\r\n"), d), ":1\r\n"...)
	}
	var msg protocols.Message
	ok := deep(MaxDepth)
	if n, err := c.DecodeResponse(ok, &msg); err != nil || n != len(ok) {
		t.Fatalf("depth %d: %d, %v", MaxDepth, n, err)
	}
	if _, err := c.DecodeResponse(deep(MaxDepth+1), &msg); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("depth %d: %v; want an error", MaxDepth+1, err)
	}
}

func TestDecodeResponseSeveralInOneBuffer(t *testing.T) {
	c := newCodec(t, "")
	var buf []byte
	for _, tc := range replyCases {
		buf = append(buf, tc.in...)
	}
	var msg protocols.Message
	for i, tc := range replyCases {
		n, err := c.DecodeResponse(buf, &msg)
		if err != nil || string(msg.Raw) != tc.in {
			t.Fatalf("reply %d: %d, %v, %q; want %q", i, n, err, msg.Raw, tc.in)
		}
		buf = buf[n:]
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left", len(buf))
	}
}

func TestRequestIsNotAReply(t *testing.T) {
	// A reply can look like a command: DecodeResponse frames it as a
	// reply, Decode as a command; each direction uses its own.
	c := newCodec(t, "")
	frame := mb("GET", "k")
	var msg protocols.Message
	if n, err := c.DecodeResponse(frame, &msg); err != nil || n != len(frame) || msg.Kind != protocols.KindResponse {
		t.Fatalf("DecodeResponse = %d, %v, %v", n, err, msg.Kind)
	}
	if len(msg.Headers.All()) != 0 {
		t.Fatal("a reply has attributes")
	}
}
