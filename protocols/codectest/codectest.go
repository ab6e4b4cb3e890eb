// Package codectest is the conformance kit every metamesh codec runs,
// built in or third party. One call from the codec's own test checks the
// rules of the protocols package against sample frames the codec's author
// supplies (ideally captured from real peers):
//
//	func TestConformance(t *testing.T) {
//		codectest.Run(t, codectest.Suite{
//			New:       func() protocols.Codec { c, _ := mycodec.New(nil); return c },
//			Factory:   mycodec.New,
//			Options:   []byte(`{"maxFrameBytes": 65536}`),
//			Requests:  codectest.ReadFrames(t, "testdata/request-*.bin"),
//			Responses: codectest.ReadFrames(t, "testdata/response-*.bin"),
//			Mutation:  true,
//		})
//	}
//
// The checks, each a subtest: every sample decodes alone as one whole frame
// of its direction; empty input is (0, nil); every prefix of a frame is
// (0, nil) and the whole frame decodes the same as alone; frames
// concatenated in one stream and cut at random boundaries (seeded, so a
// failure reproduces) decode in order through a reused, compacted buffer;
// header strings don't alias the input buffer; one codec value decodes
// concurrently; Encode rewrites and restores the request ID, appends to dst
// and leaves the frame it was given alone; mutation sets headers; error,
// status and heartbeat replies decode as the right kind with the request's
// ID; an oversize frame is refused; random and mutated bytes never make
// Decode or Encode panic or return a length out of bounds; the factory
// refuses an unknown option and near misses of the known ones. A
// protocols.Splitter's parts are whole requests of their own bytes and
// its merged reply one frame (a sample must split); a
// protocols.SessionCodec's Intercept answers with one reply frame or
// appends nothing.
//
// Fuzz is the same per-input invariants as a native fuzz target.
package codectest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

// Suite describes a codec under test and its sample frames.
type Suite struct {
	// New builds the codec under test, configured so that every sample
	// frame is valid (and Oversize is not). Each check builds one and
	// shares it between goroutines, as a listener's connections do.
	// Required.
	New func() protocols.Codec

	// Factory is the codec's protocols.Factory, the function it
	// registers. The config check calls it: nil and {} build the
	// defaults, and a config with an option the codec doesn't have is
	// refused with an error naming it. Required.
	Factory protocols.Factory
	// Options is a valid config setting at least one option, as a JSON
	// object. The config check builds the codec from it, then from near
	// misses that must be refused: each key with its case changed
	// ("maxFrameBytes" → "MaxFrameBytes"), named in the error, and the
	// config followed by a second object. Nil skips these for a codec
	// without options.
	Options []byte

	// Requests are frames a client sends: requests, oneway requests and
	// heartbeats, each decoded with Decode. At least one, and at least
	// one of KindRequest for the reply checks.
	Requests []Frame
	// Responses are frames a server sends: responses, errors and
	// heartbeat replies, decoded with DecodeResponse when the codec is a
	// protocols.ResponseDecoder and with Decode otherwise.
	Responses []Frame
	// Heartbeat is a heartbeat frame a client sends, checked to decode
	// as KindHeartbeat and answered with HeartbeatReply. Leave it nil
	// when the protocol has no heartbeats; KindHeartbeat frames among
	// Requests are checked the same way.
	Heartbeat []byte
	// Oversize is a frame, or just its beginning, longer than the limit
	// of the codec New builds; Decode must refuse it with an error
	// rather than wait for more bytes. Nil skips the check.
	Oversize []byte

	// Mutation says Encode sets headers (MetaRouter's requestMutation):
	// a request encoded with set decodes with those headers added or
	// replaced and every other header kept.
	Mutation bool
	// Mutable narrows the mutation check to the decoded frames it
	// returns true for (for Thrift, THeader frames only), requests or
	// responses. Nil means every request of kind KindRequest or
	// KindOneway. Ignored unless Mutation.
	Mutable func(msg *protocols.Message) bool
	// Set is the headers the mutation check sets. Nil uses two new keys,
	// one in mixed case (codecs keep the case of keys).
	Set []protocols.Header

	// Inexact reports the frames whose ID round trip (encode with a new
	// ID, decode, encode with the original ID) may change bytes other
	// than the ID, such as a compressed payload that is recompressed.
	// Their round trip is still checked for kind, ID, status and headers.
	// Nil means every frame must come back byte for byte.
	Inexact func(frame []byte) bool
	// MaxID is the largest request ID the protocol carries; the ID checks
	// of Multiplexed codecs use IDs up to it. Zero means 1<<32-1 (every
	// built-in codec takes at least 32 bits).
	MaxID uint64

	// Statuses are native statuses to try with StatusReply when the codec
	// is a protocols.StatusReplier; each reply must decode as a response
	// with that Status and the request's ID. Nil skips the check.
	Statuses []uint32

	// Seed makes the random splits and garbage inputs reproducible; the
	// same seed gives the same inputs. Zero means 1. Failures print it.
	Seed uint64
	// GarbageInputs is how many random inputs, and how many mutations of
	// each sample frame, are fed to the decoders. Zero means 500.
	GarbageInputs int
}

// Frame is one sample frame.
type Frame struct {
	// Name identifies the frame in failure messages (a file name).
	Name string
	// Bytes is the whole frame, exactly one.
	Bytes []byte
	// Kind, when not zero, is the kind the frame must decode to.
	Kind protocols.Kind
}

// T is the part of testing.T the kit uses: narrow enough that the kit's
// own tests run it against a recorder to prove it fails broken codecs.
// Fatalf must stop the goroutine calling it, as testing.T's does.
type T interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	// Run runs f as the subtest name and reports whether it passed.
	Run(name string, f func(T)) bool
}

// Run runs every check of s as a subtest of t.
func Run(t *testing.T, s Suite) {
	t.Helper()
	RunT(testingT{t}, s)
}

// RunT is Run for any T.
func RunT(t T, s Suite) {
	t.Helper()
	k := newKit(t, s)
	if !t.Run("samples", k.samples) {
		return // the other checks compare with what the samples decode to
	}
	t.Run("decode/empty", k.empty)
	t.Run("decode/every-prefix", k.everyPrefix)
	t.Run("decode/random-splits", k.randomSplits)
	t.Run("decode/no-retention", k.noRetention)
	t.Run("decode/concurrent", k.concurrent)
	t.Run("encode/id-round-trip", k.idRoundTrip)
	if s.Mutation {
		t.Run("encode/mutation", k.mutation)
	}
	t.Run("reply/error", k.errorReplies)
	if _, ok := k.codec.(protocols.StatusReplier); ok && len(s.Statuses) > 0 {
		t.Run("reply/status", k.statusReplies)
	}
	t.Run("reply/heartbeat", k.heartbeats)
	t.Run("classify", k.classify)
	if _, ok := k.codec.(protocols.Splitter); ok {
		t.Run("split", k.split)
	}
	if _, ok := k.codec.(protocols.SessionCodec); ok {
		t.Run("session", k.session)
	}
	if s.Oversize != nil {
		t.Run("oversize", k.oversize)
	}
	t.Run("garbage", k.garbage)
	t.Run("config", k.config)
}

// ReadFrames reads the files matching each glob pattern as one frame each,
// named by file name, in name order. It fails t when a pattern matches no
// file: a suite with fewer samples than its author meant proves less.
func ReadFrames(t testing.TB, patterns ...string) []Frame {
	t.Helper()
	var out []Frame
	for _, p := range patterns {
		paths, err := filepath.Glob(p)
		if err != nil {
			t.Fatalf("codectest: pattern %q: %v", p, err)
		}
		if len(paths) == 0 {
			t.Fatalf("codectest: no file matches %q", p)
		}
		sort.Strings(paths)
		for _, path := range paths {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("codectest: %v", err)
			}
			out = append(out, Frame{Name: filepath.Base(path), Bytes: b})
		}
	}
	return out
}

// testingT adapts *testing.T to T.
type testingT struct{ *testing.T }

func (t testingT) Run(name string, f func(T)) bool {
	return t.T.Run(name, func(t *testing.T) { f(testingT{t}) })
}

// hexHead formats the start of b for failure messages.
func hexHead(b []byte) string {
	const max = 48
	if len(b) <= max {
		return fmt.Sprintf("% x", b)
	}
	return fmt.Sprintf("% x … (%d bytes)", b[:max], len(b))
}

// fmtHeaders formats headers as k=v pairs.
func fmtHeaders(h []protocols.Header) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, kv := range h {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%q=%q", kv.Key, kv.Value)
	}
	sb.WriteByte(']')
	return sb.String()
}
