package dubbo

import (
	"bytes"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

func TestEncodeRewriteID(t *testing.T) {
	c := newCodec(t, "")
	frames := map[string][]byte{
		"request":   AppendRequest(nil, Request{ID: 1, TwoWay: true, Service: testService, Method: "m", Attachments: hdrs("a", "1")}),
		"heartbeat": AppendHeartbeat(nil, 1),
		"response":  AppendResponse(nil, 1, StatusOK, "v"),
		"error":     AppendResponse(nil, 1, StatusServiceError, "e"),
	}
	for name, f := range frames {
		t.Run(name, func(t *testing.T) {
			msg := mustDecode(t, c, f)
			prefix := []byte("prefix")
			out, err := c.Encode(prefix, msg, 0x0102030405060708, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatal("dst not appended to")
			}
			out = out[len(prefix):]
			if frameID(out) != 0x0102030405060708 {
				t.Errorf("id %x", frameID(out))
			}
			if !bytes.Equal(out[:4], f[:4]) || !bytes.Equal(out[12:], f[12:]) {
				t.Errorf("more than the ID changed")
			}
			if again := mustDecode(t, c, out); again.Kind != msg.Kind || again.ID != 0x0102030405060708 {
				t.Errorf("re-decoded %v %x", again.Kind, again.ID)
			}
		})
	}
}

func TestEncodeRequestMutation(t *testing.T) {
	c := newCodec(t, "")
	classArg := cat([]byte{'C'}, hs("com.X"), []byte{0x91}, hs("f"), []byte{0x60, 0x91})
	intVal := []byte{0xd5, 0x0b, 0xb8}
	tests := []struct {
		name string
		body []byte
		set  []protocols.Header
		want []protocols.Header // after the three body attributes
		keep [][]byte           // raw bytes the output must still hold
	}{
		{"add and override", reqBody("", "m", "", hmap(hs("a"), hs("1"), hs("b"), hs("2"))),
			hdrs("b", "two", "c", "3"), hdrs("a", "1", "b", "two", "c", "3"), nil},
		{"non-string values kept", reqBody("", "m", "", hmap(hs("timeout"), intVal, hs("a"), hs("1"), hs("l"), []byte{0x7a, 0x91, 0x92})),
			hdrs("x", "y"), hdrs("a", "1", "x", "y"), [][]byte{cat(hs("timeout"), intVal), cat(hs("l"), []byte{0x7a, 0x91, 0x92})}},
		{"override non-string", reqBody("", "m", "", hmap(hs("timeout"), intVal)),
			hdrs("timeout", "5"), hdrs("timeout", "5"), nil},
		{"typed map kept typed", reqBody("", "m", "", cat([]byte{'M'}, hs("java.util.HashMap"), hs("a"), hs("1"), []byte{'Z'})),
			hdrs("b", "2"), hdrs("a", "1", "b", "2"), [][]byte{cat([]byte{'M'}, hs("java.util.HashMap"))}},
		{"null attachments", reqBody("", "m", "", []byte{'N'}), hdrs("b", "2"), hdrs("b", "2"), nil},
		{"no attachments", reqBody("", "m", "", nil), hdrs("b", "2"), hdrs("b", "2"), nil},
		{"empty map", reqBody("", "m", "", hmap()), hdrs("b", "2"), hdrs("b", "2"), nil},
		{"later set entry wins", reqBody("", "m", "", hmap()), hdrs("b", "1", "b", "2"), hdrs("b", "2"), nil},
		{"object value using a class from the args", reqBody("", "m", "Ljava/lang/Object;",
			hmap(hs("o"), []byte{0x60, 0x92}, hs("a"), hs("1")), classArg),
			hdrs("z", "9"), hdrs("a", "1", "z", "9"), [][]byte{cat(hs("o"), []byte{0x60, 0x92})}},
		{"chunked key overridden", reqBody("", "m", "", hmap(cat([]byte{'R', 0, 1}, []byte("k"), []byte{0x01, 'y'}), hs("old"))),
			hdrs("ky", "new"), hdrs("ky", "new"), nil},
		{"unicode set", reqBody("", "m", "", hmap()), hdrs("ключ", "🚀"), hdrs("ключ", "🚀"), nil},
		{"long set value", reqBody("", "m", "", hmap()), hdrs("big", strings.Repeat("x", 40000)), hdrs("big", strings.Repeat("x", 40000)), nil},
		{"trailing bytes kept", cat(reqBody("", "m", "", hmap(hs("a"), hs("1"))), []byte{'N'}),
			hdrs("b", "2"), hdrs("a", "1", "b", "2"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := frame(reqFlags, 0, 1, tt.body)
			msg := mustDecode(t, c, f)
			out, err := c.Encode(nil, msg, 77, tt.set)
			if err != nil {
				t.Fatal(err)
			}
			again := mustDecode(t, c, out) // checks the body length too
			want := append(hdrs("service", testService, "interface", testService, "method", "m"), tt.want...)
			if got := again.Headers.All(); again.ID != 77 || again.Kind != protocols.KindRequest || !sameHeaders(got, want) {
				t.Errorf("re-decoded id %d kind %v headers\n got %q\nwant %q", again.ID, again.Kind, got, want)
			}
			for _, k := range tt.keep {
				if !bytes.Contains(out, k) {
					t.Errorf("output lost % x", k)
				}
			}
			if strings.HasPrefix(tt.name, "trailing") && out[len(out)-1] != 'N' {
				t.Errorf("trailing bytes lost")
			}
			// Encoding again from the re-decoded message is stable.
			out2, err := c.Encode(nil, again, 77, tt.set)
			if err != nil || !bytes.Equal(out, out2) {
				t.Errorf("second mutation differs: %v", err)
			}
		})
	}
}

func TestEncodeResponseMutation(t *testing.T) {
	c := newCodec(t, "")
	exc := cat([]byte{'C'}, hs("java.lang.Throwable"), []byte{0x91}, hs("detailMessage"), []byte{0x60}, hs("boom"))
	tests := []struct {
		name     string
		body     []byte
		wantFlag int32
		want     map[string]string
	}{
		{"value", cat([]byte{0x91}, hs("v")), 4, map[string]string{"s": "1"}},
		{"value int flag form", cat([]byte{'I', 0, 0, 0, 1}, hs("v")), 4, map[string]string{"s": "1"}},
		{"null value", []byte{0x92}, 5, map[string]string{"s": "1"}},
		{"exception", cat([]byte{0x90}, exc), 3, map[string]string{"s": "1"}},
		{"value dubbo-go trailing null", cat([]byte{0x91}, hs("v"), []byte{'N'}), 4, map[string]string{"s": "1"}},
		{"value with attachments", cat([]byte{0x94}, hs("v"), hmap(hs("a"), hs("x"), hs("s"), hs("old"), hs("i"), []byte{0x91})), 4,
			map[string]string{"a": "x", "s": "1"}},
		{"null with typed attachments", cat([]byte{0x95}, []byte{'M'}, hs("java.util.HashMap"), hs("a"), hs("x"), []byte{'Z', 'N'}), 5,
			map[string]string{"a": "x", "s": "1"}},
		{"exception with attachments", cat([]byte{0x93}, exc, hmap(hs("a"), hs("x"))), 3, map[string]string{"a": "x", "s": "1"}},
		{"with null attachments", cat([]byte{0x94}, hs("v"), []byte{'N'}), 4, map[string]string{"s": "1"}},
		{"with absent attachments", cat([]byte{0x94}, hs("v")), 4, map[string]string{"s": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := frame(serialHessian2, StatusOK, 5, tt.body)
			out, err := c.Encode(nil, mustDecode(t, c, f), 6, hdrs("s", "1"))
			if err != nil {
				t.Fatal(err)
			}
			again := mustDecode(t, c, out)
			if again.Kind != protocols.KindResponse || again.ID != 6 {
				t.Errorf("re-decoded %v %d", again.Kind, again.ID)
			}
			flag, att := responseAttachments(t, out)
			if flag != tt.wantFlag || len(att) != len(tt.want) {
				t.Fatalf("flag %d attachments %q; want %d %q", flag, att, tt.wantFlag, tt.want)
			}
			for k, v := range tt.want {
				if att[k] != v {
					t.Errorf("attachment %s = %q; want %q", k, att[k], v)
				}
			}
			if tt.wantFlag == 4 {
				if _, v, err := ParseResponseValue(out); err != nil || v != "v" {
					t.Errorf("value %q, %v", v, err)
				}
			}
			if f[len(f)-1] == 'N' && out[len(out)-1] != 'N' && tt.name != "with null attachments" {
				t.Errorf("trailing null lost")
			}
		})
	}
}

func TestEncodeIgnoresOrRefusesSet(t *testing.T) {
	c := newCodec(t, "")
	set := hdrs("k", "v")
	for name, f := range map[string][]byte{
		"heartbeat":       AppendHeartbeat(nil, 1),
		"heartbeat reply": c.HeartbeatReply(nil, &protocols.Message{ID: 1}),
		"error":           AppendResponse(nil, 1, StatusServiceNotFound, "no"),
		"error other ser": frame(6, StatusServerError, 1, []byte{1}),
	} {
		out, err := c.Encode(nil, mustDecode(t, c, f), 2, set)
		if err != nil || !bytes.Equal(out[12:], f[12:]) || frameID(out) != 2 {
			t.Errorf("%s: set not ignored: %v", name, err)
		}
	}
	resp := frame(6, StatusOK, 1, []byte{1, 2})
	if _, err := c.Encode(nil, mustDecode(t, c, resp), 2, set); err == nil || !strings.HasPrefix(err.Error(), "dubbo: ") {
		t.Errorf("non-hessian2 response with set: %v", err)
	}
	if out, err := c.Encode(nil, mustDecode(t, c, resp), 2, nil); err != nil || frameID(out) != 2 {
		t.Errorf("non-hessian2 response without set: %v", err)
	}
	// A request message that Decode did not fill.
	req := AppendRequest(nil, Request{ID: 1, Service: testService, Method: "m"})
	if _, err := c.Encode(nil, &protocols.Message{Raw: req}, 2, set); err == nil {
		t.Errorf("request without marks encoded")
	}
	if _, err := c.Encode(nil, &protocols.Message{Raw: []byte{1, 2}}, 2, nil); err == nil {
		t.Errorf("garbage encoded")
	}
	bad := frame(serialHessian2, StatusOK, 1, []byte{0x99})
	if _, err := c.Encode(nil, mustDecode(t, c, bad), 2, set); err == nil || !strings.Contains(err.Error(), "flag 9") {
		t.Errorf("unknown response flag: %v", err)
	}
}

func TestReplies(t *testing.T) {
	c := newCodec(t, "")
	req := mustDecode(t, c, AppendRequest(nil, Request{ID: 1 << 40, TwoWay: true, Service: testService, Method: "m"}))
	tests := []struct {
		reason protocols.Reason
		status uint32
	}{
		{protocols.ReasonNoRoute, 60},
		{protocols.ReasonNoHealthyUpstream, 80},
		{protocols.ReasonTimeout, 31},
		{protocols.ReasonOverloaded, 100},
		{protocols.ReasonRateLimited, 100},
		{protocols.ReasonDenied, 40},
		{protocols.Reason(99), 80},
	}
	for _, tt := range tests {
		t.Run(tt.reason.String(), func(t *testing.T) {
			text := "metamesh: " + tt.reason.String() + " for " + testService
			out := c.ErrorReply([]byte("x"), req, tt.reason, text)[1:]
			msg := mustDecode(t, c, out)
			if msg.Kind != protocols.KindError || msg.Status != tt.status || msg.ID != 1<<40 {
				t.Errorf("kind %v status %d id %d", msg.Kind, msg.Status, msg.ID)
			}
			if out[2] != serialHessian2 {
				t.Errorf("flags 0x%02x", out[2])
			}
			if st, v, err := ParseResponseValue(out); err != nil || st != byte(tt.status) || v != text {
				t.Errorf("ParseResponseValue = %d %q %v", st, v, err)
			}
		})
	}
	hb := mustDecode(t, c, AppendHeartbeat(nil, 33))
	out := c.HeartbeatReply(nil, hb)
	msg := mustDecode(t, c, out)
	if msg.Kind != protocols.KindHeartbeatReply || msg.Status != 20 || msg.ID != 33 || out[2] != flagEvent|serialHessian2 || out[16] != 'N' {
		t.Errorf("heartbeat reply % x", out)
	}
}

func TestParseResponseValue(t *testing.T) {
	tests := []struct {
		name    string
		frame   []byte
		status  byte
		value   string
		wantErr string
	}{
		{"value", AppendResponse(nil, 1, StatusOK, "héllo 🚀"), 20, "héllo 🚀", ""},
		{"long value", AppendResponse(nil, 1, StatusOK, strings.Repeat("ab", 40000)), 20, strings.Repeat("ab", 40000), ""},
		{"error", AppendResponse(nil, 1, StatusServiceError, "boom"), 70, "boom", ""},
		{"null value", frame(2, 20, 1, []byte{0x92}), 20, "", ""},
		{"value with attachments", frame(2, 20, 1, []byte{0x94}, hs("v"), hmap()), 20, "v", ""},
		{"null string", frame(2, 20, 1, []byte{0x91, 'N'}), 20, "", ""},
		{"heartbeat reply", frame(flagEvent|2, 20, 1, []byte{'N'}), 20, "", ""},
		{"exception", frame(2, 20, 1, []byte{0x90, 'N'}), 20, "", "exception"},
		{"not a string", frame(2, 20, 1, []byte{0x91, 0x91}), 20, "", "not a string"},
		{"bad flag", frame(2, 20, 1, []byte{0x9f}), 20, "", "flag 15"},
		{"request", AppendHeartbeat(nil, 1), 0, "", "request"},
		{"short", []byte{0xda, 0xbb}, 0, "", "not a dubbo frame"},
		{"truncated", AppendResponse(nil, 1, StatusOK, "abc")[:18], 0, "", "does not fit"},
		{"other serialization", frame(6, 20, 1, []byte{1}), 20, "", "serialization id 6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, v, err := ParseResponseValue(tt.frame)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || st != tt.status || v != tt.value {
				t.Errorf("= %d %q %v; want %d %q", st, v, err, tt.status, tt.value)
			}
		})
	}
}
