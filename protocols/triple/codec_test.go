package triple

import (
	"strconv"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

func TestErrorReplyStatuses(t *testing.T) {
	c := newCodec()
	var req protocols.Message
	if _, err := c.Decode(sampleRequest(t, 5), &req); err != nil {
		t.Fatal(err)
	}
	for reason, want := range map[protocols.Reason]uint32{
		protocols.ReasonNoRoute: 12, protocols.ReasonNoHealthyUpstream: 14, protocols.ReasonTimeout: 4,
		protocols.ReasonRateLimited: 8, protocols.ReasonDenied: 7, protocols.ReasonOverloaded: 14,
	} {
		out := c.ErrorReply(nil, &req, reason, `no route for service "svc" 100%`)
		var m protocols.Message
		if n, err := c.Decode(out, &m); err != nil || n != len(out) {
			t.Fatalf("%v: Decode = %d, %v", reason, n, err)
		}
		if m.Kind != protocols.KindError || m.ID != req.ID || m.Status != want ||
			attr(t, &m, "grpc-status") != strconv.Itoa(int(want)) ||
			attr(t, &m, "grpc-message") != `no route for service "svc" 100%25` ||
			attr(t, &m, "content-type") != "application/grpc+proto" {
			t.Errorf("%v: %v id %d status %d %v", reason, m.Kind, m.ID, m.Status, m.Headers.All())
		}
	}
}

func TestMutationLowersNames(t *testing.T) {
	c := newCodec()
	var req protocols.Message
	if _, err := c.Decode(sampleRequest(t, 5, "x-old", "1"), &req); err != nil {
		t.Fatal(err)
	}
	out, err := c.Encode(nil, &req, 7, []protocols.Header{{Key: "X-Routed-By", Value: "metamesh"}, {Key: "x-old", Value: "2"}, {Key: ":path", Value: "/evil/x"}})
	if err != nil {
		t.Fatal(err)
	}
	var m protocols.Message
	if _, err := c.Decode(out, &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != 7 || attr(t, &m, "x-routed-by") != "metamesh" || attr(t, &m, "x-old") != "2" || attr(t, &m, "service") != "org.apache.dubbo.samples.Greeter" {
		t.Fatalf("id %d %v", m.ID, m.Headers.All())
	}
}

func TestClassify(t *testing.T) {
	c := newCodec().(*Codec)
	for status, want := range map[string]protocols.ResponseClass{
		"0": protocols.ClassOK, "5": protocols.ClassOK, "14": protocols.ClassUnavailable, "13": protocols.ClassServerError, "2": protocols.ClassServerError,
	} {
		var m protocols.Message
		if _, err := c.Decode(sampleResponse(t, 3, status), &m); err != nil {
			t.Fatal(err)
		}
		if got := c.Classify(&m); got != want {
			t.Errorf("grpc-status %s: %v, want %v", status, got, want)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	c := newCodec()
	for name, in := range map[string][]byte{
		"settings":    {0, 0, 0, 4, 0, 0, 0, 0, 0},
		"even stream": sampleRequest(t, 2),
		"other stream inside": append(func() []byte {
			w := getWriter(nil)
			w.headers(1, fieldsOf(requestFields("s", "m")...), false)
			return w.put()
		}(), sampleRequest(t, 3)...),
	} {
		if _, err := c.Decode(in, &protocols.Message{}); err == nil || !strings.HasPrefix(err.Error(), "triple: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// Triple's own unary protocol has no grpc-status: its HTTP status says.
func TestTripleUnaryStatus(t *testing.T) {
	c := newCodec()
	for _, tc := range []struct {
		ct, status string
		kind       protocols.Kind
	}{
		{"application/json", "200", protocols.KindResponse},
		{"application/json", "503", protocols.KindError},
		{"application/grpc", "200", protocols.KindError}, // no grpc-status
	} {
		w := getWriter(nil)
		w.headers(3, fieldsOf(":status", tc.status, "content-type", tc.ct), false)
		w.data(3, []byte(`"v1|alice"`), true)
		var m protocols.Message
		if _, err := c.Decode(w.put(), &m); err != nil {
			t.Fatal(err)
		}
		if m.Kind != tc.kind {
			t.Errorf("%s %s: %v, want %v", tc.ct, tc.status, m.Kind, tc.kind)
		}
	}
}
