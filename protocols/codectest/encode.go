package codectest

import (
	"bytes"
	"runtime/debug"

	"github.com/metamesh/metamesh/protocols"
)

// dstPrefix is what the kit's dst holds before Encode and the replies
// append to it: they must keep it.
var dstPrefix = []byte("codectest:dst:")

func newDst(room int) []byte {
	return append(make([]byte, 0, len(dstPrefix)+room), dstPrefix...)
}

// catch runs f, turning a panic into a value.
func catch(f func()) (p *panicked) {
	defer func() {
		if v := recover(); v != nil {
			p = &panicked{v, debug.Stack()}
		}
	}()
	f()
	return nil
}

// appended checks that out starts with dstPrefix and returns what follows.
func appended(t T, what string, s *sample, out []byte) ([]byte, bool) {
	if !bytes.HasPrefix(out, dstPrefix) {
		t.Errorf("%v: %s did not append to dst: its first %d bytes became %s", s, what, len(dstPrefix), hexHead(out[:min(len(out), len(dstPrefix))]))
		return nil, false
	}
	return out[len(dstPrefix):], true
}

// untouched checks that the frame a Message was decoded from is as it was.
func untouched(t T, what string, s *sample, msg *protocols.Message) bool {
	if !bytes.Equal(msg.Raw, s.Bytes) {
		t.Errorf("%v: %s modified the frame it was given (msg.Raw): the proxy may still need it (a retry, a mirror)", s, what)
		return false
	}
	return true
}

// idRoundTrip encodes every frame without set: a Multiplexed codec with
// new IDs (each must decode with that ID and otherwise as before) and
// back to the original ID (the original bytes again, unless Inexact);
// other codecs with the frame's own ID (the original bytes again).
func (k *kit) idRoundTrip(t T) {
	c := k.s.New()
	for _, s := range k.all() {
		ids := []uint64{s.want.id}
		if k.multiplexed() {
			ids = []uint64{1, 0x80, k.s.MaxID / 3, k.s.MaxID, s.want.id}
		}
		for _, id := range ids {
			msg, why := decodeWhole(c, s.Bytes, s.response)
			if why != "" {
				t.Errorf("%v: %s", s, why)
				return
			}
			out, p, err := safeEncode(c, newDst(2*len(s.Bytes)), msg, id, nil)
			if p != nil || err != nil {
				t.Errorf("%v: Encode(id %#x, no set) = %v, %v", s, id, err, p)
				continue
			}
			enc, ok := appended(t, "Encode", s, out)
			if !ok || !untouched(t, "Encode", s, msg) {
				continue
			}
			again, why := decodeWhole(c, enc, s.response)
			if why != "" {
				t.Errorf("%v: its encoding with ID %#x (%s) doesn't decode as one frame: %s", s, id, hexHead(enc), why)
				continue
			}
			want := s.want
			want.raw, want.id = nil, id
			if got := snap(again); !sameHeaderSet(got.headers, want.headers) || got.kind != want.kind || got.id != want.id || got.status != want.status {
				got.headers = sortedLike(got.headers, want.headers)
				t.Errorf("%v encoded with ID %#x decodes differently: %s", s, id, want.diff(got))
				continue
			}
			exact := k.s.Inexact == nil || !k.s.Inexact(s.Bytes)
			if id == s.want.id {
				if exact && !bytes.Equal(enc, s.Bytes) {
					t.Errorf("%v: Encode with its own ID and no set changed the frame: first difference at byte %d of %d\n got %s\nwant %s (set Suite.Inexact if the codec can't keep the bytes)",
						s, firstDiff(enc, s.Bytes), len(s.Bytes), hexHead(enc), hexHead(s.Bytes))
				}
				continue
			}
			// Restore: what the proxy does to a response on its way back.
			back, p, err := safeEncode(c, nil, again, s.want.id, nil)
			if p != nil || err != nil {
				t.Errorf("%v: restoring ID %#x after %#x: Encode = %v, %v", s, s.want.id, id, err, p)
				continue
			}
			if exact && !bytes.Equal(back, s.Bytes) {
				t.Errorf("%v: ID %#x rewritten to %#x and restored doesn't give the frame back: first difference at byte %d of %d\n got %s\nwant %s",
					s, s.want.id, id, firstDiff(back, s.Bytes), len(s.Bytes), hexHead(back), hexHead(s.Bytes))
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// sortedLike orders got like want where it can, so a diff shows what
// differs rather than the order.
func sortedLike(got, want []protocols.Header) []protocols.Header {
	if !sameHeaderSet(got, want) {
		return got
	}
	return want
}

// withSet returns h with set applied as Headers.Set would.
func withSet(h, set []protocols.Header) []protocols.Header {
	var hs protocols.Headers
	for _, kv := range h {
		hs.Add(kv.Key, kv.Value)
	}
	for _, kv := range set {
		hs.Set(kv.Key, kv.Value)
	}
	return append([]protocols.Header(nil), hs.All()...)
}

// mutation encodes every mutable frame with Suite.Set and a new ID, then
// the result with the first key set again to a new value: each decodes
// with the headers added or replaced and the others kept.
func (k *kit) mutation(t T) {
	c := k.s.New()
	mutable := k.s.Mutable
	if mutable == nil {
		mutable = func(m *protocols.Message) bool { return m.Kind.IsRequest() }
	}
	tried := 0
	for _, s := range k.all() {
		msg, why := decodeWhole(c, s.Bytes, s.response)
		if why != "" {
			t.Errorf("%v: %s", s, why)
			continue
		}
		if !mutable(msg) {
			continue
		}
		tried++
		id := s.want.id
		if k.multiplexed() {
			id = 7
		}
		want := s.want
		want.raw, want.id = nil, id
		steps := [][]protocols.Header{k.s.Set, {{Key: k.s.Set[0].Key, Value: "codectest: replaced"}}}
		for step, set := range steps {
			out, p, err := safeEncode(c, newDst(2*len(msg.Raw)+256), msg, id, set)
			if p != nil || err != nil {
				t.Errorf("%v: Encode with set %s = %v, %v", s, fmtHeaders(set), err, p)
				break
			}
			enc, ok := appended(t, "Encode with set", s, out)
			if !ok || (step == 0 && !untouched(t, "Encode with set", s, msg)) {
				break
			}
			again, why := decodeWhole(c, enc, s.response)
			if why != "" {
				t.Errorf("%v: its encoding with set %s doesn't decode as one frame: %s", s, fmtHeaders(set), why)
				break
			}
			want.headers = withSet(want.headers, set)
			got := snap(again)
			if !sameHeaderSet(got.headers, want.headers) || got.kind != want.kind || got.id != want.id {
				got.headers = sortedLike(got.headers, want.headers)
				t.Errorf("%v encoded with set %s decodes differently: %s", s, fmtHeaders(set), want.diff(got))
				break
			}
			msg = again
		}
	}
	if tried == 0 {
		t.Errorf("Suite.Mutation is set but no sample frame is mutable (see Suite.Mutable): nothing was checked")
	}
}

// requests returns the samples of kind KindRequest, decoded afresh.
func (k *kit) requests(t T, c protocols.Codec) ([]*sample, []*protocols.Message) {
	var ss []*sample
	var ms []*protocols.Message
	for i := range k.reqs {
		s := &k.reqs[i]
		if s.want.kind != protocols.KindRequest {
			continue
		}
		msg, why := decodeWhole(c, s.Bytes, false)
		if why != "" {
			t.Errorf("%v: %s", s, why)
			continue
		}
		ss, ms = append(ss, s), append(ms, msg)
	}
	if len(ss) == 0 {
		t.Errorf("no sample request of kind %v: local replies can't be checked", protocols.KindRequest)
	}
	return ss, ms
}

// reply decodes a reply to msg (the sample s) that build appended to dst
// and checks its kind and ID; it returns the decoded reply.
func (k *kit) reply(t T, c protocols.Codec, what string, s *sample, msg *protocols.Message, build func(dst []byte) []byte, kind func(protocols.Kind) bool, wantKind string) *protocols.Message {
	var out []byte
	if p := catch(func() { out = build(newDst(256)) }); p != nil {
		t.Errorf("%v: %s panicked: %v", s, what, p)
		return nil
	}
	rep, ok := appended(t, what, s, out)
	if !ok || !untouched(t, what, s, msg) {
		return nil
	}
	got, why := decodeWhole(c, rep, true)
	switch {
	case why != "":
		t.Errorf("%v: %s (%s) doesn't decode as one response frame: %s", s, what, hexHead(rep), why)
		return nil
	case !kind(got.Kind):
		t.Errorf("%v: %s decodes as %v, want %s", s, what, got.Kind, wantKind)
	case k.multiplexed() && got.ID != msg.ID:
		t.Errorf("%v: %s carries ID %#x, want the request's %#x", s, what, got.ID, msg.ID)
	}
	return got
}

// allReasons are the local reply reasons, and one the codec can't know
// yet: a newer proxy may add reasons, and the codec must still answer.
var allReasons = []protocols.Reason{
	protocols.ReasonNoRoute, protocols.ReasonNoHealthyUpstream, protocols.ReasonTimeout,
	protocols.ReasonOverloaded, protocols.ReasonRateLimited, protocols.ReasonDenied, protocols.Reason(200),
}

// errorReplies checks ErrorReply for every reason and request sample.
func (k *kit) errorReplies(t T) {
	c := k.s.New()
	ss, ms := k.requests(t, c)
	for i, s := range ss {
		for _, r := range allReasons {
			text := "codectest: " + r.String()
			k.reply(t, c, "ErrorReply("+r.String()+")", s, ms[i], func(dst []byte) []byte {
				return c.ErrorReply(dst, ms[i], r, text)
			}, func(k protocols.Kind) bool { return k == protocols.KindError }, "error")
		}
	}
}

// statusReplies checks StatusReply for every Suite.Statuses.
func (k *kit) statusReplies(t T) {
	c := k.s.New()
	sr := c.(protocols.StatusReplier)
	ss, ms := k.requests(t, c)
	for i, s := range ss {
		for _, st := range k.s.Statuses {
			got := k.reply(t, c, "StatusReply", s, ms[i], func(dst []byte) []byte {
				return sr.StatusReply(dst, ms[i], st, "codectest: status")
			}, protocols.Kind.IsResponse, "a response")
			if got != nil && got.Status != st {
				t.Errorf("%v: StatusReply(%d) decodes with status %d", s, st, got.Status)
			}
		}
	}
}

// heartbeats answers Suite.Heartbeat and every heartbeat sample.
func (k *kit) heartbeats(t T) {
	c := k.s.New()
	var hbs []*sample
	if k.s.Heartbeat != nil {
		hbs = append(hbs, &sample{Frame: Frame{Name: "Suite.Heartbeat", Bytes: k.s.Heartbeat}})
	}
	for i := range k.reqs {
		if k.reqs[i].want.kind == protocols.KindHeartbeat {
			hbs = append(hbs, &k.reqs[i])
		}
	}
	if len(hbs) == 0 {
		t.Logf("no heartbeat frame: the protocol has none, nothing to check")
		return
	}
	for _, s := range hbs {
		msg, why := decodeWhole(c, s.Bytes, false)
		if why != "" {
			t.Errorf("%v: %s", s, why)
			continue
		}
		if msg.Kind != protocols.KindHeartbeat {
			t.Errorf("%v decodes as %v, want %v", s, msg.Kind, protocols.KindHeartbeat)
			continue
		}
		k.reply(t, c, "HeartbeatReply", s, msg, func(dst []byte) []byte { return c.HeartbeatReply(dst, msg) },
			func(k protocols.Kind) bool { return k == protocols.KindHeartbeatReply }, "heartbeat_reply")
	}
}

// classify checks that a successful response never counts against its
// server.
func (k *kit) classify(t T) {
	c := k.s.New()
	for i := range k.resps {
		s := &k.resps[i]
		msg, why := decodeWhole(c, s.Bytes, true)
		if why != "" {
			t.Errorf("%v: %s", s, why)
			continue
		}
		var class protocols.ResponseClass
		if p := catch(func() { class = protocols.Classify(c, msg) }); p != nil {
			t.Errorf("%v: Classify panicked: %v", s, p)
			continue
		}
		if msg.Kind == protocols.KindResponse && class != protocols.ClassOK {
			t.Errorf("%v: a %v is classified %d, want ClassOK: only errors count against a server", s, msg.Kind, class)
		}
	}
}

// oversize checks that a frame over the codec's limit is refused.
func (k *kit) oversize(t T) {
	c := k.s.New()
	for _, response := range []bool{false, true} {
		dec, name := decoderOf(c, response)
		n, p, err := safeDecode(dec, bytes.Clone(k.s.Oversize), &protocols.Message{})
		if p != nil || err == nil {
			t.Errorf("%s(Suite.Oversize, %s) = %d, %v, %v; want an error: a frame over the limit must be refused, not buffered",
				name, hexHead(k.s.Oversize), n, err, p)
		}
		if _, ok := c.(protocols.ResponseDecoder); !ok {
			break
		}
	}
}
