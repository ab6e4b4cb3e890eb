package triple

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/codectest"
)

func samples(t testing.TB) (reqs, resps []codectest.Frame) {
	reqs = []codectest.Frame{
		{Name: "unary request", Bytes: sampleRequest(t, 1, "tri-service-version", "1.0.0", "batchjob", "true")},
		{Name: "request on a later stream", Bytes: sampleRequest(t, 2001)},
		{Name: "ping", Bytes: ping(false)},
	}
	w := getWriter(nil)
	w.headers(7, fieldsOf(requestFields("svc", "Empty")...), true)
	reqs = append(reqs, codectest.Frame{Name: "request without a body", Bytes: w.put()})
	resps = []codectest.Frame{
		{Name: "response", Bytes: sampleResponse(t, 1, "0")},
		{Name: "application error", Bytes: sampleResponse(t, 3, "5")},
		{Name: "trailers only", Bytes: newCodec().ErrorReply(nil, &protocols.Message{ID: 9}, protocols.ReasonNoRoute, "no route")},
		{Name: "ping ack", Bytes: ping(true)},
	}
	return reqs, resps
}

func TestConformance(t *testing.T) {
	reqs, resps := samples(t)
	oversize := getWriter(nil)
	oversize.headers(1, fieldsOf(requestFields("svc", "Big")...), false)
	big := oversize.put()
	big = append(big, 0, 0x40, 0, 0, 0, 0, 0, 0, 1) // a 16 KiB DATA frame header
	big = append(big, make([]byte, 16384)...)
	for range 4 {
		big = append(big, 0, 0x40, 0, 0, 0, 0, 0, 0, 1)
		big = append(big, make([]byte, 16384)...)
	}
	codectest.Run(t, codectest.Suite{
		New:       newCodec,
		Factory:   New,
		Options:   []byte(`{"maxMessageBytes": 65536, "maxConcurrentStreams": 10}`),
		Requests:  reqs,
		Responses: resps,
		Heartbeat: ping(false),
		Oversize:  big,
		Mutation:  true,
		Mutable:   func(m *protocols.Message) bool { return m.Kind.IsRequest() || m.Kind.IsResponse() },
		Set:       []protocols.Header{{Key: "x-routed-by", Value: "metamesh"}, {Key: "batchjob", Value: "false"}},
		MaxID:     MaxID,
		Statuses:  []uint32{codeUnavailable, codeUnimplemented, 3},
	})
}
