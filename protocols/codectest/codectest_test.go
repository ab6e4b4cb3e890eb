package codectest_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/codectest"
)

// recorder is a codectest.T that records failures instead of failing the
// test running it, so a test can assert that the kit fails a codec.
type recorder struct {
	name   string
	parent *recorder
	log    *records
	failed bool // guarded by log.mu
}

type records struct {
	mu       sync.Mutex
	failures []string // "subtest: message"
}

func newRecorder() *recorder { return &recorder{log: &records{}} }

func (r *recorder) Helper()                   {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); runtime.Goexit() }

func (r *recorder) Errorf(format string, args ...any) {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	r.log.failures = append(r.log.failures, r.name+": "+fmt.Sprintf(format, args...))
	for p := r; p != nil; p = p.parent {
		p.failed = true
	}
}

func (r *recorder) Run(name string, f func(codectest.T)) bool {
	child := &recorder{name: strings.TrimPrefix(r.name+"/"+name, "/"), parent: r, log: r.log}
	done := make(chan struct{})
	go func() { // a goroutine of its own, so Fatalf's Goexit ends only it
		defer close(done)
		f(child)
	}()
	<-done
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	return !child.failed
}

// run runs the kit on s against a recorder and returns the failures.
func run(s codectest.Suite) []string {
	r := newRecorder()
	r.Run("", func(t codectest.T) { codectest.RunT(t, s) })
	return r.log.failures
}

// tinySamples are frames of the tiny protocol.
func tinySamples() (reqs, resps []codectest.Frame, heartbeat []byte) {
	frame := func(name string, kind protocols.Kind, id uint64, kv ...string) codectest.Frame {
		return codectest.Frame{Name: name, Bytes: appendTiny(nil, kind, id, hdrs(kv...)), Kind: kind}
	}
	reqs = []codectest.Frame{
		frame("request-plain", protocols.KindRequest, 1, "service", "echo", "method", "say", "user", "u-1"),
		frame("request-empty-value", protocols.KindRequest, 0xfffffffe, "service", "echo", "tag", ""),
		frame("oneway", protocols.KindOneway, 9, "service", "log"),
		frame("heartbeat", protocols.KindHeartbeat, 77),
	}
	resps = []codectest.Frame{
		frame("response", protocols.KindResponse, 1, "result", "hello"),
		frame("error", protocols.KindError, 2, "error", "boom"),
		frame("heartbeat-reply", protocols.KindHeartbeatReply, 77),
	}
	return reqs, resps, appendTiny(nil, protocols.KindHeartbeat, 5, nil)
}

func tinySuite(c *tiny) codectest.Suite {
	reqs, resps, hb := tinySamples()
	return codectest.Suite{
		New:       func() protocols.Codec { return c },
		Factory:   newTiny,
		Options:   []byte(tinyOptionsJSON),
		Requests:  reqs,
		Responses: resps,
		Heartbeat: hb,
		Oversize:  []byte{0xff, 0xff, byte(protocols.KindRequest), 0, 0, 0, 1},
		Mutation:  true,
		Mutable:   func(m *protocols.Message) bool { return m.Kind.IsRequest() || m.Kind == protocols.KindResponse },
	}
}

func TestGoodCodecPasses(t *testing.T) {
	for _, f := range run(tinySuite(&tiny{})) {
		t.Error(f)
	}
}

// TestRunOnTestingT runs the kit the way a codec's test does.
func TestRunOnTestingT(t *testing.T) {
	codectest.Run(t, tinySuite(&tiny{}))
}

// TestBrokenCodecsFail runs the kit on codecs broken in one way each: it
// must fail them, in the check meant to catch that bug.
func TestBrokenCodecsFail(t *testing.T) {
	for _, tc := range []struct {
		name  string
		codec *tiny
		check string // the subtest that must fail
		says  string // in its message
	}{
		{"header strings alias the buffer", &tiny{alias: true}, "decode/no-retention", "alias buf"},
		{"aliasing also breaks a read loop", &tiny{alias: true}, "decode/random-splits", "headers"},
		{"frame decoded from a short buffer", &tiny{eager: true}, "decode/every-prefix", "decoded from a short buffer"},
		{"partial frame is an error", &tiny{impatient: true}, "decode/every-prefix", "a partial frame is not an error"},
		{"length past the frame", &tiny{stretchesN: true}, "decode/random-splits", "frame"},
		{"panics on garbage", &tiny{fragile: true}, "garbage", "panicked"},
		{"error reply loses the ID", &tiny{lostID: true}, "reply/error", "want the request's"},
		{"mutation ignored", &tiny{deafToSet: true}, "encode/mutation", "decodes differently"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failures := run(tinySuite(tc.codec))
			if len(failures) == 0 {
				t.Fatal("the kit passed a broken codec")
			}
			for _, f := range failures {
				if strings.HasPrefix(f, tc.check+": ") && strings.Contains(f, tc.says) {
					t.Logf("the kit said: %.600s", f)
					return
				}
			}
			t.Errorf("no failure of %s saying %q; the kit said:\n%s", tc.check, tc.says, strings.Join(failures, "\n"))
		})
	}
}

// TestSplitterAndSessionChecks runs the kit on codecs with a Splitter or
// a SessionCodec: good ones pass, broken ones fail in the check meant to
// catch them, and a Splitter whose samples never split fails.
func TestSplitterAndSessionChecks(t *testing.T) {
	withSamples := func(c protocols.Codec, extra ...codectest.Frame) codectest.Suite {
		s := tinySuite(&tiny{})
		s.New = func() protocols.Codec { return c }
		s.Requests = append(s.Requests, extra...)
		return s
	}
	keys := codectest.Frame{Name: "request-keys", Bytes: appendTiny(nil, protocols.KindRequest, 3, hdrs("service", "kv", "keys", "a,b,c")), Kind: protocols.KindRequest}
	ping := codectest.Frame{Name: "request-ping", Bytes: appendTiny(nil, protocols.KindRequest, 4, hdrs("service", "kv", "method", "ping")), Kind: protocols.KindRequest}
	for _, s := range []codectest.Suite{withSamples(&tinySplit{}, keys), withSamples(&tinySession{}, ping)} {
		for _, f := range run(s) {
			t.Error(f)
		}
	}
	for _, tc := range []struct {
		name  string
		suite codectest.Suite
		check string
		says  string
	}{
		{"parts alias the request", withSamples(&tinySplit{aliasParts: true}, keys), "split", "aliases it"},
		{"merge of two frames", withSamples(&tinySplit{mergeTwo: true}, keys), "split", "doesn't decode as one response frame"},
		{"no sample splits", withSamples(&tinySplit{}), "split", "splits no request sample"},
		{"forward with a reply", withSamples(&tinySession{chatty: true}, ping), "session", "appended"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failures := run(tc.suite)
			for _, f := range failures {
				if strings.HasPrefix(f, tc.check+": ") && strings.Contains(f, tc.says) {
					t.Logf("the kit said: %.600s", f)
					return
				}
			}
			t.Errorf("no failure of %s saying %q; the kit said:\n%s", tc.check, tc.says, strings.Join(failures, "\n"))
		})
	}
}

// TestSuiteMistakes: a suite that can't check anything fails rather than
// passing vacuously.
func TestSuiteMistakes(t *testing.T) {
	reqs, _, _ := tinySamples()
	for name, s := range map[string]codectest.Suite{
		"no New":      {Requests: reqs},
		"no samples":  {New: func() protocols.Codec { return &tiny{} }},
		"bad samples": {New: func() protocols.Codec { return &tiny{} }, Requests: []codectest.Frame{{Name: "short", Bytes: []byte{0, 9, 1}}}},
		"mutation without a mutable frame": {New: func() protocols.Codec { return &tiny{} }, Requests: reqs,
			Mutation: true, Mutable: func(*protocols.Message) bool { return false }},
	} {
		if len(run(s)) == 0 {
			t.Errorf("%s: the kit passed", name)
		}
	}
}

// FuzzTiny runs the kit's fuzz helper on the good fake codec.
func FuzzTiny(f *testing.F) {
	reqs, resps, _ := tinySamples()
	var seeds [][]byte
	for _, fr := range append(reqs, resps...) {
		seeds = append(seeds, fr.Bytes)
	}
	codectest.Fuzz(f, func() protocols.Codec { return &tiny{} }, seeds...)
}
