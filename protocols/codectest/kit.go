package codectest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"strings"

	"github.com/metamesh/metamesh/protocols"
)

// kit holds a suite and what its samples decode to.
type kit struct {
	s     Suite
	codec protocols.Codec // for checks that only inspect it (Model, interfaces)
	// reqs and resps are the samples with their expected decodes, filled
	// by the samples check.
	reqs, resps []sample
}

// sample is a frame with what it decodes to alone.
type sample struct {
	Frame
	response bool // decoded with the response decoder
	want     snapshot
}

func (s *sample) String() string {
	dir := "request"
	if s.response {
		dir = "response"
	}
	if s.Name != "" {
		return fmt.Sprintf("%s %s", dir, s.Name)
	}
	return dir + " frame"
}

// snapshot is a deep copy of what a Message says.
type snapshot struct {
	kind    protocols.Kind
	id      uint64
	status  uint32
	headers []protocols.Header
	raw     []byte
}

func snap(m *protocols.Message) snapshot {
	s := snapshot{kind: m.Kind, id: m.ID, status: m.Status, raw: bytes.Clone(m.Raw)}
	for _, h := range m.Headers.All() {
		s.headers = append(s.headers, protocols.Header{Key: strings.Clone(h.Key), Value: strings.Clone(h.Value)})
	}
	return s
}

// diff describes how got differs from s, or returns "".
func (s snapshot) diff(got snapshot) string {
	var d []string
	if got.kind != s.kind {
		d = append(d, fmt.Sprintf("kind %v, want %v", got.kind, s.kind))
	}
	if got.id != s.id {
		d = append(d, fmt.Sprintf("ID %#x, want %#x", got.id, s.id))
	}
	if got.status != s.status {
		d = append(d, fmt.Sprintf("status %d, want %d", got.status, s.status))
	}
	if !sameHeaders(got.headers, s.headers) {
		d = append(d, fmt.Sprintf("headers %s, want %s", fmtHeaders(got.headers), fmtHeaders(s.headers)))
	}
	if s.raw != nil && !bytes.Equal(got.raw, s.raw) {
		d = append(d, fmt.Sprintf("Raw %s, want %s", hexHead(got.raw), hexHead(s.raw)))
	}
	return strings.Join(d, "; ")
}

func sameHeaders(a, b []protocols.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sameHeaderSet compares headers ignoring order: a rebuilt header block may
// order them differently.
func sameHeaderSet(a, b []protocols.Header) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[protocols.Header]int{}
	for _, h := range a {
		count[h]++
	}
	for _, h := range b {
		count[h]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

func newKit(t T, s Suite) *kit {
	t.Helper()
	if s.New == nil {
		t.Fatalf("codectest: Suite.New is nil")
	}
	if len(s.Requests) == 0 {
		t.Fatalf("codectest: Suite.Requests is empty: the kit needs sample frames")
	}
	if s.MaxID == 0 {
		s.MaxID = math.MaxUint32
	}
	if s.Seed == 0 {
		s.Seed = 1
	}
	if s.GarbageInputs == 0 {
		s.GarbageInputs = 500
	}
	if s.Set == nil {
		s.Set = []protocols.Header{{Key: "x-codectest", Value: "one"}, {Key: "X-CodecTest-Case", Value: "Two Words"}}
	}
	c := s.New()
	if c == nil {
		t.Fatalf("codectest: Suite.New returned nil")
	}
	k := &kit{s: s, codec: c}
	for _, f := range s.Requests {
		k.reqs = append(k.reqs, sample{Frame: f})
	}
	for _, f := range s.Responses {
		k.resps = append(k.resps, sample{Frame: f, response: true})
	}
	return k
}

func (k *kit) rand(stream uint64) *rand.Rand { return rand.New(rand.NewPCG(k.s.Seed, stream)) }

func (k *kit) multiplexed() bool { return k.codec.Model() == protocols.Multiplexed }

// all returns every sample, requests first.
func (k *kit) all() []*sample {
	out := make([]*sample, 0, len(k.reqs)+len(k.resps))
	for i := range k.reqs {
		out = append(out, &k.reqs[i])
	}
	for i := range k.resps {
		out = append(out, &k.resps[i])
	}
	return out
}

// decoder is Decode or DecodeResponse.
type decoder func(buf []byte, msg *protocols.Message) (int, error)

// decoderOf returns c's decoder for frames from a server (response) or a
// client, and its name for messages.
func decoderOf(c protocols.Codec, response bool) (decoder, string) {
	if response {
		if rd, ok := c.(protocols.ResponseDecoder); ok {
			return rd.DecodeResponse, "DecodeResponse"
		}
	}
	return c.Decode, "Decode"
}

// panicked describes a recovered panic with its stack.
type panicked struct {
	value any
	stack []byte
}

func (p *panicked) String() string { return fmt.Sprintf("panic: %v\n%s", p.value, p.stack) }

// safeDecode calls dec, turning a panic into a value.
func safeDecode(dec decoder, buf []byte, msg *protocols.Message) (n int, p *panicked, err error) {
	defer func() {
		if v := recover(); v != nil {
			p = &panicked{v, debug.Stack()}
		}
	}()
	n, err = dec(buf, msg)
	return n, nil, err
}

// safeEncode calls c.Encode, turning a panic into a value.
func safeEncode(c protocols.Codec, dst []byte, msg *protocols.Message, id uint64, set []protocols.Header) (out []byte, p *panicked, err error) {
	defer func() {
		if v := recover(); v != nil {
			p = &panicked{v, debug.Stack()}
		}
	}()
	out, err = c.Encode(dst, msg, id, set)
	return out, nil, err
}

// decodeWhole decodes a private copy of frame, expecting exactly one whole
// frame; it returns the message (whose Raw aliases the copy) or why not.
func decodeWhole(c protocols.Codec, frame []byte, response bool) (*protocols.Message, string) {
	dec, name := decoderOf(c, response)
	buf := bytes.Clone(frame)
	msg := &protocols.Message{}
	n, p, err := safeDecode(dec, buf[:len(buf):len(buf)], msg)
	switch {
	case p != nil:
		return nil, fmt.Sprintf("%s panicked: %v", name, p)
	case err != nil:
		return nil, fmt.Sprintf("%s = %d, %v", name, n, err)
	case n != len(frame):
		return nil, fmt.Sprintf("%s = %d, nil; want the whole frame, %d", name, n, len(frame))
	case !rawEnds(buf, n, msg.Raw):
		return nil, fmt.Sprintf("%s took the whole frame but msg.Raw (%d bytes) is not its end", name, len(msg.Raw))
	}
	return msg, ""
}

// rawEnds reports whether raw is the last len(raw) bytes of buf[:n]: the
// frame Decode consumed, after any padding it skipped (Redis skips blank
// lines between commands).
func rawEnds(buf []byte, n int, raw []byte) bool {
	return len(raw) > 0 && len(raw) <= n && &raw[len(raw)-1] == &buf[n-1]
}

// samples checks that every sample decodes alone as one whole frame of its
// direction, and records what it decodes to.
func (k *kit) samples(t T) {
	c := k.s.New()
	for _, s := range k.all() {
		msg, why := decodeWhole(c, s.Bytes, s.response)
		if why != "" {
			t.Errorf("%v (%s): %s", s, hexHead(s.Bytes), why)
			continue
		}
		ok := msg.Kind.IsRequest() || msg.Kind == protocols.KindHeartbeat
		if s.response {
			ok = msg.Kind.IsResponse() || msg.Kind == protocols.KindHeartbeatReply
		}
		switch {
		case s.Kind != 0 && msg.Kind != s.Kind:
			t.Errorf("%v decodes as %v, want %v", s, msg.Kind, s.Kind)
		case !ok:
			t.Errorf("%v decodes as %v, a kind of the other direction", s, msg.Kind)
		}
		s.want = snap(msg)
	}
}

// empty checks that no input is (0, nil) for every decoder.
func (k *kit) empty(t T) {
	c := k.s.New()
	for _, response := range []bool{false, true} {
		dec, name := decoderOf(c, response)
		for _, buf := range [][]byte{nil, {}} {
			var msg protocols.Message
			n, p, err := safeDecode(dec, buf, &msg)
			if p != nil || n != 0 || err != nil {
				t.Errorf("%s(%#v) = %d, %v, %v; want 0, nil: no bytes is a frame still to come", name, buf, n, err, p)
			}
		}
	}
}
