package router

import (
	"testing"

	"github.com/metamesh/metamesh/protocols"
)

func demoLimit() *GlobalRateLimit {
	return &GlobalRateLimit{Domain: "production", Match: []Matcher{{Name: "method", Kind: MatchExact, Value: "sayHello"}},
		Descriptors: []DescriptorEntry{{Key: "method", Property: "method"}, {Key: "user", Property: "user"}}}
}

// TestGlobalRateLimitApplies: only requests that match and carry every
// descriptor's attribute ask the service.
func TestGlobalRateLimitApplies(t *testing.T) {
	g := demoLimit()
	for _, c := range []struct {
		kv   []string
		want bool
	}{
		{[]string{"method", "sayHello", "user", "ann"}, true},
		{[]string{"method", "sayHello"}, false},             // no user: no descriptor
		{[]string{"method", "other", "user", "ann"}, false}, // no match
		{nil, false},
	} {
		var h protocols.Headers
		for i := 0; i < len(c.kv); i += 2 {
			h.Set(c.kv[i], c.kv[i+1])
		}
		if got := g.Applies(&h); got != c.want {
			t.Errorf("Applies(%v) = %v, want %v", c.kv, got, c.want)
		}
	}
}

// BenchmarkGlobalRateLimitNoMatch: a request the limit does not match
// costs a matcher check and no allocation.
func BenchmarkGlobalRateLimitNoMatch(b *testing.B) {
	g := demoLimit()
	var h protocols.Headers
	h.Set("interface", "org.apache.dubbo.samples.DemoService")
	h.Set("method", "sayGoodbye")
	h.Set("user", "ann")
	b.ReportAllocs()
	for b.Loop() {
		if g.Applies(&h) {
			b.Fatal("applies")
		}
	}
	if a := testing.AllocsPerRun(100, func() { g.Applies(&h) }); a != 0 {
		b.Fatalf("%v allocs per no-match check, want 0", a)
	}
}
