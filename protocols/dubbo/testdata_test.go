package dubbo

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

var update = flag.Bool("update", false, "rewrite testdata/seed/*.bin from seedFrames")

// seedFrames are hand-built frames kept in testdata/seed/: they seed the
// fuzzer and pin the builders' output. Names start with the frame kind.
func seedFrames() map[string][]byte {
	c := &Codec{maxBody: DefaultMaxBodyBytes}
	str := "Ljava/lang/String;"
	var allForms [][]byte
	var desc string
	for _, f := range hessianForms {
		// Class definitions number per body: forms defining classes
		// would shift each other's indexes.
		if len(f.raw) < 100 && !strings.Contains(f.name, "object") && !strings.Contains(f.name, "class") {
			allForms = append(allForms, f.raw)
			desc += "Ljava/lang/Object;"
		}
	}
	exc := cat([]byte{'C'}, hs("java.lang.Throwable"), []byte{0x91}, hs("detailMessage"), []byte{0x60}, hs("boom"))
	return map[string][]byte{
		"request-basic": AppendRequest(nil, Request{ID: 1, TwoWay: true, Service: testService, Version: "1.0.0", Method: "sayHello",
			Args: []string{"world", "metamesh"}, Attachments: hdrs("path", testService, "timeout", "3000", "user-id", "u-1")}),
		"request-allforms": frame(reqFlags, 0, 2, reqBody("1.0.0", "forms", desc, hmap(hs("a"), hs("1")), allForms...)),
		"request-typedmap": frame(reqFlags, 0, 3, reqBody("", "m", str,
			cat([]byte{'M'}, hs("java.util.HashMap"), hs("version"), hs("2.0"), hs("group"), hs("g"), []byte{'Z'}), hs("x"))),
		"request-nonstring-attachments": frame(reqFlags, 0, 4, reqBody("", "m", "", hmap(
			hs("timeout"), []byte{0xd5, 0x0b, 0xb8}, hs("n"), []byte{'N'}, hs("l"), []byte{0x7a, 0x91, 0x92}, []byte{0x91}, hs("v"), hs("a"), hs("1")))),
		// Chunks are small here: a big seed slows the fuzzer down (the
		// unit tests cover putString's 32k chunks).
		"request-chunked": frame(reqFlags, 0, 5, reqBody("", "m", str, hmap(
			cat([]byte{'R', 0, 1}, []byte("k"), []byte{0x01, 'y'}),
			cat([]byte{'R', 0, 3}, []byte("é🚀"), []byte{'R', 0, 2, 0xed, 0xa0, 0xbd, 0xed, 0xba, 0x80}, []byte{0x30, 0x02}, []byte("zz"))),
			cat([]byte{'R', 0, 2}, []byte("ab"), []byte{'S', 0, 1}, []byte("c")))),
		"request-java-surrogates":  frame(reqFlags, 0, 6, reqBody("", "m", "", hmap(hs("e"), []byte{0x02, 0xed, 0xa0, 0xbd, 0xed, 0xba, 0x80}))),
		"request-null-attachments": frame(reqFlags, 0, 7, reqBody("", "m", "", []byte{'N'})),
		"request-class-in-attachments": frame(reqFlags, 0, 8, reqBody("", "m", "Ljava/lang/Object;",
			hmap(hs("o"), []byte{0x60, 0x92}), cat([]byte{'C'}, hs("com.X"), []byte{0x91}, hs("f"), []byte{0x60, 0x91}))),
		"oneway-basic":            AppendRequest(nil, Request{ID: 9, Service: testService, Method: "notify", Args: []string{"x"}}),
		"heartbeat-basic":         AppendHeartbeat(nil, 10),
		"heartbeat_reply-basic":   c.HeartbeatReply(nil, &protocols.Message{ID: 10}),
		"response-value":          AppendResponse(nil, 1, StatusOK, "hello"),
		"response-attachments":    frame(2, 20, 2, []byte{0x94}, hs("v"), hmap(hs("a"), hs("x"), hs("i"), []byte{0x91}), []byte{'N'}),
		"response-null":           frame(2, 20, 3, []byte{0x92}),
		"response-exception":      frame(2, 20, 4, []byte{0x90}, exc),
		"error-service-not-found": c.ErrorReply(nil, &protocols.Message{ID: 5}, protocols.ReasonNoRoute, "metamesh: no route"),
	}
}

func TestSeedFrames(t *testing.T) {
	dir := filepath.Join("testdata", "seed")
	for name, b := range seedFrames() {
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
			t.Errorf("%s is stale or missing (%v): run go test ./protocols/dubbo -run TestSeedFrames -update", path, err)
		}
	}
}

// kindOf maps a file name prefix to the kind its frame must decode to.
func kindOf(name string) (protocols.Kind, bool) {
	for _, p := range []struct {
		prefix string
		kind   protocols.Kind
	}{
		{"request-", protocols.KindRequest},
		{"oneway-", protocols.KindOneway},
		{"response-", protocols.KindResponse},
		{"error-", protocols.KindError},
		{"heartbeat_reply-", protocols.KindHeartbeatReply},
		{"heartbeat-", protocols.KindHeartbeat},
	} {
		if strings.HasPrefix(name, p.prefix) {
			return p.kind, true
		}
	}
	return 0, false
}

// testFrameFiles checks every frame in dir: its kind by file name, the
// routing attributes of requests, and ID rewrite and mutation round trips.
// It returns the frames by name.
func testFrameFiles(t *testing.T, dir string) map[string]*protocols.Message {
	paths, err := filepath.Glob(filepath.Join(dir, "*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		t.Skipf("no frames in %s yet: nothing to check", dir)
	}
	c := newCodec(t, "")
	msgs := map[string]*protocols.Message{}
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".bin")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := kindOf(name)
			if !ok {
				t.Fatalf("file name %q does not start with a frame kind", name)
			}
			msg := mustDecode(t, c, b)
			msgs[name] = msg
			if msg.Kind != want {
				t.Fatalf("kind %v; want %v", msg.Kind, want)
			}
			svc, _ := msg.Headers.Get("service")
			method, _ := msg.Headers.Get("method")
			if msg.Kind.IsRequest() && (svc == "" || method == "") {
				t.Errorf("request without service/method: %q", msg.Headers.All())
			}
			out, err := c.Encode(nil, msg, msg.ID+1000, hdrs("x-routed-by", "metamesh"))
			if err != nil {
				t.Fatal(err)
			}
			again := mustDecode(t, c, out)
			svc2, _ := again.Headers.Get("service")
			method2, _ := again.Headers.Get("method")
			if again.Kind != msg.Kind || again.ID != msg.ID+1000 || svc2 != svc || method2 != method {
				t.Errorf("after mutation: %v %d %q %q", again.Kind, again.ID, svc2, method2)
			}
			if v, _ := again.Headers.Get("x-routed-by"); msg.Kind.IsRequest() && v != "metamesh" {
				t.Errorf("mutation lost: %q", again.Headers.All())
			}
			if msg.Kind == protocols.KindResponse && b[2]&serialMask == serialHessian2 {
				if _, att := responseAttachments(t, out); att["x-routed-by"] != "metamesh" {
					t.Errorf("response mutation lost: %q", att)
				}
			}
		})
	}
	return msgs
}

func TestSeedFrameFiles(t *testing.T) { testFrameFiles(t, filepath.Join("testdata", "seed")) }

// TestCapturedFrames decodes frames captured from real dubbo-go v3.3.0
// clients and servers (see README.md).
func TestCapturedFrames(t *testing.T) { testFrameFiles(t, filepath.Join("testdata", "captured")) }

// TestGoHessianFrames decodes frames written by dubbo-go-hessian2's own
// encoder (testdata/hessian2gen): objects, collections, dates, long and
// chunked strings, exceptions.
func TestGoHessianFrames(t *testing.T) {
	msgs := testFrameFiles(t, filepath.Join("testdata", "hessian2"))
	for _, name := range []string{"request-pojo", "request-collections", "request-longstring", "oneway-pojo"} {
		msg := msgs[name]
		if msg == nil {
			t.Errorf("%s missing", name)
			continue
		}
		for _, kv := range [][2]string{
			{"service", testService}, {"interface", testService}, {"version", "1.0.0"}, {"group", "blue"},
			{"timeout", "3000"}, {"user-id", "u-42"}, {"batchjob", "true"}, {"emoji", "go 🚀 now"},
			{"long", strings.Repeat("v", 1100)}, {"path", testService},
		} {
			if v, _ := msg.Headers.Get(kv[0]); v != kv[1] {
				t.Errorf("%s: %s = %q; want %q", name, kv[0], v, kv[1])
			}
		}
	}
	for name, want := range map[string]string{"response-pojo": "", "response-string-noatt": "hello", "response-null": ""} {
		b, err := os.ReadFile(filepath.Join("testdata", "hessian2", name+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		_, v, err := ParseResponseValue(b)
		if name == "response-pojo" {
			if err == nil {
				t.Errorf("%s: an object value parsed as a string", name)
			}
			continue
		}
		if err != nil || v != want {
			t.Errorf("%s: value %q, %v", name, v, err)
		}
	}
}
