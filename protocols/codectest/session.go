package codectest

import (
	"bytes"
	"fmt"

	"github.com/metamesh/metamesh/protocols"
)

// split checks a protocols.Splitter: the parts of every request sample it
// splits are whole request frames of their own bytes, with the attributes
// Decode gives them; Split appends to the parts it is given; the merge of
// the parts' replies (error replies, as when the proxy answers every part
// itself) is one reply frame appended to dst. At least one sample must
// split, or nothing was checked.
func (k *kit) split(t T) {
	c := k.s.New()
	sp := c.(protocols.Splitter)
	ss, ms := k.requests(t, c)
	splits := 0
	for i, s := range ss {
		msg := ms[i]
		sentinel := protocols.Message{Kind: protocols.KindOneway, ID: 0x5e71}
		var parts []protocols.Message
		if p := catch(func() { parts = sp.Split([]protocols.Message{sentinel}, msg) }); p != nil {
			t.Errorf("%v: Split panicked: %v", s, p)
			continue
		}
		if len(parts) == 0 || parts[0].Kind != sentinel.Kind || parts[0].ID != sentinel.ID {
			t.Errorf("%v: Split did not append to the parts it was given", s)
			continue
		}
		parts = parts[1:]
		if len(parts) == 0 {
			continue
		}
		splits++
		if len(parts) == 1 {
			t.Errorf("%v: Split made one part: a request routed whole returns parts unchanged", s)
		}
		before := make([]snapshot, len(parts))
		for j := range parts {
			before[j] = snap(&parts[j])
		}
		// The request's buffer is reused by the read loop once Split
		// returns: the parts must not depend on it.
		orig := bytes.Clone(msg.Raw)
		for j := range msg.Raw {
			msg.Raw[j] = 0xa5
		}
		for j := range parts {
			if d := before[j].diff(snap(&parts[j])); d != "" {
				t.Errorf("%v: part %d changed when the request's buffer was overwritten (it aliases it): %s", s, j, d)
				continue
			}
			got, why := decodeWhole(c, parts[j].Raw, false)
			switch {
			case why != "":
				t.Errorf("%v: part %d (%s) doesn't decode as one request frame: %s", s, j, hexHead(parts[j].Raw), why)
			case got.Kind != protocols.KindRequest:
				t.Errorf("%v: part %d decodes as %v, want %v", s, j, got.Kind, protocols.KindRequest)
			case !sameHeaders(snap(got).headers, before[j].headers):
				t.Errorf("%v: part %d has headers %s, but its frame decodes with %s", s, j, fmtHeaders(before[j].headers), fmtHeaders(snap(got).headers))
			}
		}
		copy(msg.Raw, orig)
		k.merge(t, c, sp, s, msg, parts)
	}
	if splits == 0 {
		t.Errorf("the codec is a protocols.Splitter but Split splits no request sample: add one it splits (a command with several keys)")
	}
}

// merge checks that Merge of error replies to parts is one reply frame
// (the kit has no successful replies to feed it: a codec's own tests check
// how it merges them).
func (k *kit) merge(t T, c protocols.Codec, sp protocols.Splitter, s *sample, msg *protocols.Message, parts []protocols.Message) {
	replies := make([][]byte, len(parts))
	for j := range parts {
		replies[j] = c.ErrorReply(nil, &parts[j], protocols.ReasonNoHealthyUpstream, fmt.Sprintf("codectest: part %d", j))
	}
	k.reply(t, c, "Merge of error replies", s, msg, func(dst []byte) []byte {
		return sp.Merge(dst, msg, replies)
	}, protocols.Kind.IsResponse, "a response")
}

// session checks a protocols.SessionCodec: a new session's Intercept of
// every request sample either answers it with one reply frame appended to
// dst (Answer, Close) or appends nothing; it leaves the request alone; the
// preamble of a Pin is whole request frames. Each sample goes to a new
// session, so a Pin that needs earlier requests (Redis: MULTI, then a
// keyed command) is not reached, and its preamble not checked, by one
// sample alone.
func (k *kit) session(t T) {
	c := k.s.New()
	sc := c.(protocols.SessionCodec)
	for i := range k.reqs {
		s := &k.reqs[i]
		if !s.want.kind.IsRequest() {
			continue
		}
		msg, why := decodeWhole(c, s.Bytes, false)
		if why != "" {
			t.Errorf("%v: %s", s, why)
			continue
		}
		sess := sc.NewSession()
		if sess == nil {
			t.Fatalf("NewSession returned nil")
		}
		var out []byte
		var v protocols.Verdict
		if p := catch(func() { out, v = sess.Intercept(newDst(256), msg) }); p != nil {
			t.Errorf("%v: Intercept panicked: %v", s, p)
			continue
		}
		if !untouched(t, "Intercept", s, msg) {
			continue
		}
		rep, ok := appended(t, "Intercept", s, out)
		if !ok {
			continue
		}
		switch v {
		case protocols.Answer, protocols.Close, protocols.Abandon:
			got, why := decodeWhole(c, rep, true)
			switch {
			case why != "":
				t.Errorf("%v: Intercept answered (%s) with no one reply frame: %s", s, hexHead(rep), why)
			case !got.Kind.IsResponse():
				t.Errorf("%v: Intercept answered with a frame of kind %v, want a response", s, got.Kind)
			case k.multiplexed() && got.ID != msg.ID:
				t.Errorf("%v: Intercept's reply carries ID %#x, want the request's %#x", s, got.ID, msg.ID)
			}
		case protocols.Forward, protocols.Pin, protocols.Unpin, protocols.Once:
			if len(rep) != 0 {
				t.Errorf("%v: Intercept returned verdict %d but appended %d bytes: only Answer and Close reply", s, v, len(rep))
			}
			if pre, ok := sess.(protocols.Preambler); ok && v == protocols.Pin {
				for j, m := range pre.Preamble() {
					if _, why := decodeWhole(c, m.Raw, false); why != "" {
						t.Errorf("%v: preamble %d (%s) is not one request frame: %s", s, j, hexHead(m.Raw), why)
					}
				}
			}
		default:
			t.Errorf("%v: Intercept returned verdict %d, which the protocols package does not define", s, v)
		}
	}
}
