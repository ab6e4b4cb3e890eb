package protocols

import (
	"strings"
	"testing"
)

type nopCodec struct{}

func (nopCodec) Model() Model                                                        { return Exclusive }
func (nopCodec) Decode([]byte, *Message) (int, error)                                { return 0, nil }
func (nopCodec) Encode(dst []byte, _ *Message, _ uint64, _ []Header) ([]byte, error) { return dst, nil }
func (nopCodec) ErrorReply(dst []byte, _ *Message, _ Reason, _ string) []byte        { return dst }
func (nopCodec) HeartbeatReply(dst []byte, _ *Message) []byte                        { return dst }

func TestRegisterRefusesDuplicatesAndEmpties(t *testing.T) {
	f := func([]byte) (Codec, error) { return nopCodec{}, nil }
	if err := Register("test-codec", f); err != nil {
		t.Fatalf("first Register: %v", err)
	}
	if err := Register("test-codec", f); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("duplicate Register = %v, want already registered", err)
	}
	if err := Register("", f); err == nil {
		t.Fatal("Register with an empty name succeeded")
	}
	if err := Register("nil-factory", nil); err == nil {
		t.Fatal("Register with a nil factory succeeded")
	}
	if _, err := New("test-codec", nil); err != nil {
		t.Fatalf("New(test-codec): %v", err)
	}
	if _, err := New("no-such-codec", nil); err == nil || !strings.Contains(err.Error(), "test-codec") {
		t.Fatalf("New(unknown) = %v, want an error listing registered codecs", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustRegister of a duplicate did not panic")
		}
	}()
	MustRegister("test-codec", f)
}

func TestHeaders(t *testing.T) {
	var h Headers
	h.Add("service", "a")
	h.Set("Method", "x")
	h.Set("service", "b")
	if v, ok := h.Get("service"); !ok || v != "b" {
		t.Fatalf("Get(service) = %q, %v; want b", v, ok)
	}
	if _, ok := h.Get("method"); ok {
		t.Fatal("keys must be case-sensitive")
	}
	h.Del("service")
	if h.Len() != 1 || h.All()[0].Key != "Method" {
		t.Fatalf("after Del: %v", h.All())
	}
	h.Reset()
	if h.Len() != 0 {
		t.Fatal("Reset left headers")
	}
}

func TestKindAndReasonNames(t *testing.T) {
	if KindOneway.String() != "oneway" || !KindOneway.IsRequest() || KindOneway.IsResponse() {
		t.Fatal("oneway kind")
	}
	if !KindError.IsResponse() || Kind(0).String() != "unknown" {
		t.Fatal("error kind")
	}
	if ReasonRateLimited.String() != "rate_limited" || ReasonDenied.String() != "denied" || Reason(99).String() != "unknown" {
		t.Fatal("reason names")
	}
	if Multiplexed.String() != "multiplexed" || Model(0).String() != "unknown" {
		t.Fatal("model names")
	}
}

func BenchmarkHeadersGet(b *testing.B) {
	var h Headers
	for _, k := range []string{"service", "interface", "method", "version", "group", "batchjob", "tenant", "x-request-id"} {
		h.Add(k, "v")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := h.Get("x-request-id"); !ok {
			b.Fatal("missing")
		}
	}
}

func TestClassifyDefault(t *testing.T) {
	var c Codec = nopCodec{}
	for kind, want := range map[Kind]ResponseClass{KindResponse: ClassOK, KindError: ClassServerError} {
		if got := Classify(c, &Message{Kind: kind}); got != want {
			t.Errorf("%v: class %d, want %d", kind, got, want)
		}
	}
}
