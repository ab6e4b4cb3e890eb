package thrift

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/metamesh/metamesh/protocols"
)

var wantArgs = fmt.Sprint([]any{"world", int32(42), "a", "bc"})

func TestRewriteIDRoundTrip(t *testing.T) {
	c := newCodec(t, "")
	// Compact seqids are varints: these change its length both ways.
	ids := []struct{ from, to int32 }{{1, 2}, {1, 300_000_000}, {300_000_000, 1}, {5, -2}, {-2, 0}}
	for _, cb := range combos {
		for _, mt := range messageTypes {
			for _, id := range ids {
				t.Run(fmt.Sprintf("%v/%v/%d-%d", cb, mt.kind, id.from, id.to), func(t *testing.T) {
					hdrs := map[string]string{"X-Trace": "t1"}
					frame := build(t, cb, call{service: "Greeter", method: "sayHello", typ: mt.typ, seq: id.from, headers: hdrs})
					msg := decode(t, c, frame)
					out, err := c.Encode([]byte("prefix"), msg, uint64(uint32(id.to)), nil)
					if err != nil {
						t.Fatal(err)
					}
					if string(out[:6]) != "prefix" {
						t.Fatal("Encode overwrote dst")
					}
					out = out[6:]
					r := readBack(t, cb, out)
					wantName := "sayHello"
					if mt.kind.IsRequest() {
						wantName = "Greeter:sayHello"
					}
					if r.seq != id.to || r.name != wantName || r.typ != mt.typ {
						t.Fatalf("read back %q %v seq %d; want %q %v %d", r.name, r.typ, r.seq, wantName, mt.typ, id.to)
					}
					if mt.typ == thrift.EXCEPTION {
						if r.exc.TypeId() != thrift.PROTOCOL_ERROR || r.exc.Error() != "boom" {
							t.Fatalf("exception %d %q", r.exc.TypeId(), r.exc.Error())
						}
					} else if got := fmt.Sprint(r.args); got != wantArgs {
						t.Fatalf("args %s; want %s", got, wantArgs)
					}
					if cb.trans == "header" && fmt.Sprint(r.headers) != fmt.Sprint(hdrs) {
						t.Fatalf("headers %v; want %v", r.headers, hdrs)
					}
					again := decode(t, c, out)
					if again.ID != uint64(uint32(id.to)) || again.Kind != msg.Kind {
						t.Fatalf("re-decoded id %d kind %v", again.ID, again.Kind)
					}
					if cb.trans == "header" && int32(beUint32(out[8:])) != id.to {
						t.Fatalf("THeader seqid %d; want %d", int32(beUint32(out[8:])), id.to)
					}
				})
			}
		}
	}
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func TestEncodeRejects(t *testing.T) {
	c := newCodec(t, "")
	if _, err := c.Encode(nil, &protocols.Message{Raw: []byte{1, 2}}, 1, nil); err == nil {
		t.Fatal("Encode of an undecoded message succeeded")
	}
	msg := decode(t, c, build(t, combos[0], call{method: "m", typ: thrift.CALL}))
	if _, err := c.Encode(nil, msg, 1<<32, nil); err == nil {
		t.Fatal("Encode of a 33-bit id succeeded")
	}
}

func TestTHeaderMutation(t *testing.T) {
	c := newCodec(t, "")
	set := []protocols.Header{{Key: "X-User-Id", Value: "replaced"}, {Key: "x-routed-by", Value: "metamesh"}, {Key: "x-routed-by", Value: "metamesh2"}}
	for _, cb := range combos {
		for _, hdrs := range []map[string]string{nil, {"X-User-Id": "u-1", "keep": "k"}} {
			t.Run(fmt.Sprintf("%v/%d", cb, len(hdrs)), func(t *testing.T) {
				frame := build(t, cb, call{method: "sayHello", typ: thrift.CALL, seq: 9, headers: hdrs})
				msg := decode(t, c, frame)
				out, err := c.Encode(nil, msg, 300_000_000, set)
				if err != nil {
					t.Fatal(err)
				}
				r := readBack(t, cb, out)
				if r.seq != 300_000_000 || r.name != "sayHello" || fmt.Sprint(r.args) != wantArgs {
					t.Fatalf("read back %q seq %d args %v", r.name, r.seq, r.args)
				}
				if cb.trans != "header" {
					// No place for headers: set is ignored.
					plain, err := c.Encode(nil, msg, 300_000_000, nil)
					if err != nil || !bytes.Equal(out, plain) {
						t.Fatalf("set changed a %v frame", cb)
					}
					return
				}
				want := map[string]string{"X-User-Id": "replaced", "x-routed-by": "metamesh2"}
				if hdrs != nil {
					want["keep"] = "k"
				}
				if fmt.Sprint(r.headers) != fmt.Sprint(want) {
					t.Fatalf("headers %v; want %v", r.headers, want)
				}
				again := decode(t, c, out)
				if header(again, "X-User-Id") != "replaced" || header(again, "x-routed-by") != "metamesh2" || again.ID != 300_000_000 {
					t.Fatalf("re-decoded %v id %d", again.Headers.All(), again.ID)
				}
			})
		}
	}
}

func TestErrorReply(t *testing.T) {
	c := newCodec(t, "")
	reasons := []struct {
		reason protocols.Reason
		typ    int32
	}{
		{protocols.ReasonNoRoute, thrift.UNKNOWN_METHOD},
		{protocols.ReasonNoHealthyUpstream, thrift.INTERNAL_ERROR},
		{protocols.ReasonTimeout, thrift.INTERNAL_ERROR},
		{protocols.ReasonOverloaded, thrift.INTERNAL_ERROR},
		{protocols.ReasonRateLimited, thrift.INTERNAL_ERROR},
		{protocols.ReasonDenied, thrift.UNKNOWN_APPLICATION_EXCEPTION},
	}
	for _, cb := range combos {
		for _, rs := range reasons {
			t.Run(fmt.Sprintf("%v/%v", cb, rs.reason), func(t *testing.T) {
				req := decode(t, c, build(t, cb, call{service: "Greeter", method: "sayHello", typ: thrift.CALL, seq: -7, headers: map[string]string{"a": "b"}}))
				text := "metamesh: " + rs.reason.String() + " (route r1, service Greeter)"
				out := c.ErrorReply([]byte("prefix"), req, rs.reason, text)[6:]
				rb := cb
				rb.zlib = false
				r := readBack(t, rb, out)
				if r.typ != thrift.EXCEPTION || r.name != "sayHello" || r.seq != -7 {
					t.Fatalf("reply %q %v seq %d", r.name, r.typ, r.seq)
				}
				if r.exc.TypeId() != rs.typ || r.exc.Error() != text {
					t.Fatalf("exception %d %q; want %d %q", r.exc.TypeId(), r.exc.Error(), rs.typ, text)
				}
				reply := decode(t, c, out)
				if reply.Kind != protocols.KindError || reply.ID != req.ID || reply.Status != uint32(rs.typ) {
					t.Fatalf("re-decoded %v id %d status %d", reply.Kind, reply.ID, reply.Status)
				}
			})
		}
	}
	// A message the codec did not decode gets a framed binary reply.
	out := c.ErrorReply(nil, &protocols.Message{ID: 3}, protocols.ReasonTimeout, "t")
	if r := readBack(t, combos[0], out); r.seq != 3 || r.exc.TypeId() != thrift.INTERNAL_ERROR {
		t.Fatalf("default reply seq %d type %d", r.seq, r.exc.TypeId())
	}
}
