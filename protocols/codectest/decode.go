package codectest

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/metamesh/metamesh/protocols"
)

// everyPrefix feeds each frame as growing prefixes, byte by byte: each
// shorter prefix must be (0, nil), as a proxy sees it arrive, and the
// whole frame must decode as it does alone. Every prefix is fed at its
// exact capacity, so a decoder can't peek past it.
func (k *kit) everyPrefix(t T) {
	c := k.s.New()
	for _, s := range k.all() {
		dec, name := decoderOf(c, s.response)
		buf := bytes.Clone(s.Bytes)
		msg := &protocols.Message{}
		for i := 0; i < len(buf); i++ {
			n, p, err := safeDecode(dec, buf[:i:i], msg)
			if p != nil || n != 0 || err != nil {
				why := fmt.Sprintf("= %d, %v", n, err)
				switch {
				case p != nil:
					why = "panicked: " + p.String()
				case n != 0:
					why += "; a frame was decoded from a short buffer"
				case err != nil:
					why += "; a partial frame is not an error, wait for more bytes"
				}
				t.Errorf("%v: %s of its first %d of %d bytes %s (want 0, nil)", s, name, i, len(buf), why)
				break
			}
		}
		n, p, err := safeDecode(dec, buf, msg)
		if p != nil || err != nil || n != len(buf) {
			t.Errorf("%v: %s after its prefixes = %d, %v, %v; want %d, nil", s, name, n, err, p, len(buf))
			continue
		}
		if d := s.want.diff(snap(msg)); d != "" {
			t.Errorf("%v decoded into a Message that held a prefix's decode differs from decoding it alone: %s (Decode must reset msg)", s, d)
		}
	}
}

// randomSplits runs a proxy-like read loop over streams of the samples in
// random order: bytes arrive in chunks cut at random boundaries, several
// frames may sit in one read, each frame is decoded into one reused
// Message, and the consumed bytes are overwritten by compacting the buffer.
// Headers are kept without copying until the end, so a header that
// aliases the buffer shows up too.
func (k *kit) randomSplits(t T) {
	c := k.s.New()
	for _, response := range []bool{false, true} {
		pool := k.reqs
		if response {
			pool = k.resps
		}
		if len(pool) == 0 {
			continue
		}
		dec, name := decoderOf(c, response)
		for round, maxChunk := range []int{2, 5, 16, 64, 512, 4096, 1 << 30} {
			rng := k.rand(uint64(round)<<1 | b2u(response))
			order := make([]*sample, 0, 3*len(pool))
			var stream []byte
			for range max(3, 2*len(pool)) {
				s := &pool[rng.IntN(len(pool))]
				order = append(order, s)
				stream = append(stream, s.Bytes...)
			}
			where := fmt.Sprintf("%s stream %d (seed %d, chunks up to %d bytes)", name, round, k.s.Seed, maxChunk)
			if !k.readLoop(t, dec, stream, order, maxChunk, rng.IntN, where) {
				return
			}
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// decoded is one frame from the read loop: its headers as the codec
// returned them (not copied) and the rest copied.
type decoded struct {
	snap    snapshot
	headers []protocols.Header
}

// readLoop decodes stream in chunks of 1..maxChunk bytes (intn picks) and
// compares the frames with order. It reports whether all went well.
func (k *kit) readLoop(t T, dec decoder, stream []byte, order []*sample, maxChunk int, intn func(int) int, where string) bool {
	// One array for the whole stream: headers aliasing it are caught by
	// the flip below.
	buf := make([]byte, 0, len(stream))
	msg := &protocols.Message{}
	var got []decoded
	for off := 0; off < len(stream); {
		chunk := min(1+intn(maxChunk), len(stream)-off)
		buf = append(buf, stream[off:off+chunk]...)
		off += chunk
		for len(buf) > 0 {
			n, p, err := safeDecode(dec, buf[:len(buf):len(buf)], msg)
			if p != nil || err != nil || n < 0 || n > len(buf) {
				t.Errorf("%s: frame %d (%v), %d bytes buffered after %d read: = %d, %v, %v",
					where, len(got), frameAt(order, len(got)), len(buf), off, n, err, p)
				return false
			}
			if n == 0 {
				break
			}
			s := snap(msg)
			s.headers = nil
			got = append(got, decoded{snap: s, headers: append([]protocols.Header(nil), msg.Headers.All()...)})
			// The proxy reuses its read buffer: the next bytes land where
			// this frame was.
			buf = buf[:copy(buf, buf[n:])]
		}
	}
	if len(buf) > 0 {
		t.Errorf("%s: %d bytes left undecoded at the end of the stream, after %d of %d frames", where, len(buf), len(got), len(order))
		return false
	}
	// Flip every byte the buffer ever held: a header still pointing
	// into it changes.
	full := buf[:cap(buf)]
	for i := range full {
		full[i] ^= 0xff
	}
	ok := true
	for i, d := range got {
		if i >= len(order) {
			t.Errorf("%s: %d frames decoded from a stream of %d", where, len(got), len(order))
			return false
		}
		d.snap.headers = d.headers
		if diff := order[i].want.diff(d.snap); diff != "" {
			t.Errorf("%s: frame %d (%v): %s", where, i, order[i], diff)
			ok = false
		}
	}
	if len(got) != len(order) {
		t.Errorf("%s: %d frames decoded from a stream of %d", where, len(got), len(order))
		ok = false
	}
	return ok
}

func frameAt(order []*sample, i int) string {
	if i < len(order) {
		return order[i].String()
	}
	return "past the end"
}

// noRetention decodes each frame from its own buffer, overwrites the
// buffer, and checks the headers didn't change; then decodes every other
// frame (overwriting each buffer too) and checks again, for codecs that
// keep state behind the strings they return.
func (k *kit) noRetention(t T) {
	c := k.s.New()
	all := k.all()
	for _, s := range all {
		dec, name := decoderOf(c, s.response)
		buf := bytes.Clone(s.Bytes)
		msg := &protocols.Message{}
		if n, p, err := safeDecode(dec, buf, msg); p != nil || err != nil || n != len(buf) {
			t.Errorf("%v: %s = %d, %v, %v", s, name, n, err, p)
			continue
		}
		kept := append([]protocols.Header(nil), msg.Headers.All()...)
		for i := range buf {
			buf[i] ^= 0xff
		}
		if !k.sameAsWanted(t, s, kept, "after its input buffer was overwritten: header strings alias buf (copy them, e.g. string(b))") {
			continue
		}
		for _, o := range all {
			odec, _ := decoderOf(c, o.response)
			obuf := bytes.Clone(o.Bytes)
			safeDecode(odec, obuf, &protocols.Message{})
			for i := range obuf {
				obuf[i] ^= 0xff
			}
		}
		k.sameAsWanted(t, s, kept, "after other frames were decoded: the codec retains buffers or shares storage between Messages")
	}
}

func (k *kit) sameAsWanted(t T, s *sample, got []protocols.Header, why string) bool {
	if sameHeaders(got, s.want.headers) {
		return true
	}
	for i := range min(len(got), len(s.want.headers)) {
		if got[i] != s.want.headers[i] {
			t.Errorf("%v: header %q=%q became %q=%q %s", s, s.want.headers[i].Key, s.want.headers[i].Value, got[i].Key, got[i].Value, why)
			return false
		}
	}
	t.Errorf("%v: headers became %s %s", s, fmtHeaders(got), why)
	return false
}

// concurrent decodes every sample from several goroutines through one
// codec value, as a listener's connections share it. Run with -race.
func (k *kit) concurrent(t T) {
	c := k.s.New()
	const workers, rounds = 4, 8
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
	)
	all := k.all()
	for w := range workers {
		wg.Go(func() {
			msg := &protocols.Message{}
			for r := range rounds {
				for i := range all {
					s := all[(i+w*r)%len(all)]
					dec, name := decoderOf(c, s.response)
					buf := bytes.Clone(s.Bytes)
					n, p, err := safeDecode(dec, buf, msg)
					diff := ""
					if p != nil || err != nil || n != len(buf) {
						diff = fmt.Sprintf("%s = %d, %v, %v", name, n, err, p)
					} else {
						diff = s.want.diff(snap(msg))
					}
					if diff != "" {
						mu.Lock()
						errs = append(errs, fmt.Sprintf("goroutine %d: %v: %s", w, s, diff))
						mu.Unlock()
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for i, e := range errs {
		if i == 3 {
			t.Errorf("… and %d more", len(errs)-i)
			break
		}
		t.Errorf("concurrent decode with one codec value: %s (a Codec must be safe for concurrent use)", e)
	}
}
