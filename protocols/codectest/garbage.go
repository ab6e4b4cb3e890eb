package codectest

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// garbage feeds random bytes and mutated samples to every decoder.
func (k *kit) garbage(t T) {
	c := k.s.New()
	rng := k.rand(1 << 40)
	var inputs [][]byte
	for range k.s.GarbageInputs {
		n := rng.IntN(64)
		if rng.IntN(8) == 0 {
			n = rng.IntN(4096)
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		inputs = append(inputs, b)
	}
	all := k.all()
	for _, s := range all {
		for range k.s.GarbageInputs {
			inputs = append(inputs, mutate(rng, s.Bytes, all))
		}
	}
	failures := 0
	for i, in := range inputs {
		if !checkInput(t, c, in) {
			failures++
			if failures == 3 {
				t.Errorf("stopping after %d failing inputs (seed %d, input %d)", failures, k.s.Seed, i)
				return
			}
		}
	}
}

// mutate returns a damaged copy of frame: the kinds of damage that find
// bugs in length-prefixed decoders.
func mutate(rng *rand.Rand, frame []byte, others []*sample) []byte {
	b := bytes.Clone(frame)
	for range 1 + rng.IntN(3) {
		if len(b) == 0 {
			return b
		}
		i := rng.IntN(len(b))
		switch rng.IntN(7) {
		case 0: // a random byte
			b[i] = byte(rng.Uint32())
		case 1: // a boundary value, as in a length or count field
			b[i] = []byte{0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff}[rng.IntN(6)]
		case 2: // flip a bit
			b[i] ^= 1 << rng.IntN(8)
		case 3: // truncate
			b = b[:i]
		case 4: // drop a span
			j := min(len(b), i+1+rng.IntN(8))
			b = append(b[:i:i], b[j:]...)
		case 5: // duplicate a span
			j := min(len(b), i+1+rng.IntN(8))
			b = append(b[:j:j], b[i:]...)
		case 6: // another frame's tail spliced in
			o := others[rng.IntN(len(others))].Bytes
			b = append(b[:i:i], o[rng.IntN(len(o)+1):]...)
		}
	}
	return b
}

// checkInput feeds buf to every decoder of c and checks the invariants that
// hold for any input: no panic; a length within 0..len(buf); a decoded
// frame's Raw as long as the length; and a decoded frame re-encodes (with a
// new ID for Multiplexed codecs) into one frame that decodes to the same
// kind, status and headers. It reports whether all held.
func checkInput(t T, c protocols.Codec, buf []byte) bool {
	ok := true
	for _, response := range []bool{false, true} {
		if response {
			if _, has := c.(protocols.ResponseDecoder); !has {
				break
			}
		}
		ok = checkOne(t, c, buf, response) && ok
	}
	return ok
}

func checkOne(t T, c protocols.Codec, buf []byte, response bool) bool {
	dec, name := decoderOf(c, response)
	in := bytes.Clone(buf)
	msg := &protocols.Message{}
	n, p, err := safeDecode(dec, in[:len(in):len(in)], msg)
	switch {
	case p != nil:
		t.Errorf("%s panicked on %s: %v", name, hexHead(buf), p)
		return false
	case n < 0 || n > len(buf):
		t.Errorf("%s(%s) = %d, %v: a length outside 0..%d", name, hexHead(buf), n, err, len(buf))
		return false
	case err != nil || n == 0:
		return true
	case !rawEnds(in, n, msg.Raw):
		t.Errorf("%s(%s) = %d but msg.Raw (%d bytes) is not the end of those bytes: Raw is the frame consumed", name, hexHead(buf), n, len(msg.Raw))
		return false
	}
	want := snap(msg)
	id := msg.ID
	if c.Model() == protocols.Multiplexed {
		id ^= 1 // a new ID of the same width
	}
	out, p, err := safeEncode(c, nil, msg, id, nil)
	if p != nil || err != nil {
		t.Errorf("Encode(id %#x) of a %v that %s accepted (%s) = %v, %v: the proxy could not forward it", id, msg.Kind, name, hexHead(buf[:n]), err, p)
		return false
	}
	again := &protocols.Message{}
	m, p, err := safeDecode(dec, out, again)
	if p != nil || err != nil || m != len(out) {
		t.Errorf("%s of the re-encoded %v = %d of %d, %v, %v\n  input %s\nencoded %s", name, msg.Kind, m, len(out), err, p, hexHead(buf[:n]), hexHead(out))
		return false
	}
	got := snap(again)
	want.raw, want.id = nil, id
	if !sameHeaderSet(got.headers, want.headers) || got.kind != want.kind || got.id != want.id || got.status != want.status {
		got.headers = sortedLike(got.headers, want.headers)
		t.Errorf("re-encoded %v decodes differently: %s\n  input %s\nencoded %s", msg.Kind, want.diff(got), hexHead(buf[:n]), hexHead(out))
		return false
	}
	return true
}

// Fuzz is a codec's native fuzz target: it adds seeds (sample frames) to
// the corpus and checks, for each input, with one codec from newCodec, what
// the garbage check does: Decode (and DecodeResponse) don't panic and
// return a length within the input; a decoded frame re-encodes with a new
// ID and decodes again the same. Call it from the codec's FuzzDecode:
//
//	func FuzzDecode(f *testing.F) {
//		codectest.Fuzz(f, func() protocols.Codec { return mycodec.New() }, seeds...)
//	}
func Fuzz(f *testing.F, newCodec func() protocols.Codec, seeds ...[]byte) {
	f.Helper()
	for _, s := range seeds {
		f.Add(s)
	}
	c := newCodec()
	f.Fuzz(func(t *testing.T, buf []byte) {
		checkInput(testingT{t}, c, buf)
	})
}
