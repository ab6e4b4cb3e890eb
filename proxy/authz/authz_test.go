package authz

import (
	"net/netip"
	"testing"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/router"
)

func pats(t testing.TB, ss ...string) []Pattern {
	t.Helper()
	out := make([]Pattern, len(ss))
	for i, s := range ss {
		p, err := ParsePattern(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

func headers(kv ...string) *protocols.Headers {
	h := &protocols.Headers{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestParsePattern(t *testing.T) {
	for _, tc := range []struct {
		pattern, value string
		want           bool
	}{
		{"sayHello", "sayHello", true},
		{"sayHello", "sayHello2", false},
		{"say*", "sayHello", true},
		{"say*", "say", true},
		{"say*", "greet", false},
		{"*Hello", "sayHello", true},
		{"*Hello", "sayHi", false},
		{"*", "x", true},
		{"*", "", false},
		{"sayHello", "", false},
	} {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		if got := p.Match(tc.value); got != tc.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tc.pattern, tc.value, got, tc.want)
		}
	}
	for _, bad := range []string{"", "a*b", "*a*", "**"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted", bad)
		}
	}
}

const greeter = "org.apache.dubbo.samples.api.GreetingsService"

func TestCheck(t *testing.T) {
	local := &Peer{Addr: netip.MustParseAddr("127.0.0.1")}
	remote := &Peer{Addr: netip.MustParseAddr("198.18.0.9")}
	mapped := &Peer{Addr: netip.MustParseAddr("::ffff:127.0.0.1")}
	debug, err := router.NewRegexMatcher("debug", "true|yes", true)
	if err != nil {
		t.Fatal(err)
	}
	allowHello := &Policy{Name: "default/allow-hello", Services: []string{greeter}, Rules: []Rule{{
		From: []Source{{IPBlocks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		To:   []Operation{{Methods: pats(t, "sayHello"), Attributes: []router.Matcher{debug}}},
	}}}
	allowByPrincipal := &Policy{Name: "default/allow-batch", Services: []string{greeter}, Rules: []Rule{{
		From: []Source{{Principals: pats(t, "cluster.local/ns/batch/sa/*")}},
	}}}
	denyByPrincipal := &Policy{Name: "default/deny-dev", Action: Deny, Rules: []Rule{{
		From: []Source{{Namespaces: pats(t, "dev")}},
	}}}
	denyUnauthenticated := &Policy{Name: "default/deny-plaintext", Action: Deny, Rules: []Rule{{
		From: []Source{{NotPrincipals: pats(t, "*")}},
	}}}
	denyFlush := &Policy{Name: "default/no-flush", Action: Deny, Services: []string{"cache"}, Rules: []Rule{{
		To: []Operation{
			{Attributes: []router.Matcher{{Name: "command", Kind: router.MatchExact, Value: "flushall"}}},
			{Attributes: []router.Matcher{{Name: "key", Kind: router.MatchPrefix, Value: "secret:"}}},
		},
	}}}
	dryDenyRemote := &Policy{Name: "default/dry-remote", Action: Deny, DryRun: true, Rules: []Rule{{
		From: []Source{{NotIPBlocks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
	}}}
	dryAllowGreet := &Policy{Name: "default/dry-allow", DryRun: true, Services: []string{greeter}, Rules: []Rule{{
		To: []Operation{{Methods: pats(t, "say*"), NotServices: pats(t, "*.internal")}},
	}}}
	audit := &Policy{Name: "metamesh-system/audit", Action: Audit, Rules: []Rule{{}}}
	allowNothing := &Policy{Name: "default/allow-nothing", Services: []string{"locked"}}

	hello := headers("method", "sayHello")
	bye := headers("method", "sayGoodbye")
	debugHello := headers("method", "sayHello", "debug", "yes")
	other := headers("method", "get")

	for _, tc := range []struct {
		name     string
		policies []*Policy
		service  string
		h        *protocols.Headers
		peer     *Peer
		denied   string
		dry      string
		audited  string
	}{
		{"allowed method", []*Policy{allowHello}, greeter, hello, local, "", "", ""},
		{"v4-mapped source", []*Policy{allowHello}, greeter, hello, mapped, "", "", ""},
		{"other method", []*Policy{allowHello}, greeter, bye, local, "default/allow-hello", "", ""},
		{"not attribute", []*Policy{allowHello}, greeter, debugHello, local, "default/allow-hello", "", ""},
		{"other source", []*Policy{allowHello}, greeter, hello, remote, "default/allow-hello", "", ""},
		{"other service unprotected", []*Policy{allowHello}, "cache", bye, remote, "", "", ""},
		{"either allow", []*Policy{allowHello, allowByPrincipal}, greeter, bye, local, "default/allow-hello,default/allow-batch", "", ""},
		{"principal unknown: ALLOW denies", []*Policy{allowByPrincipal}, greeter, hello, local, "default/allow-batch", "", ""},
		{"principal known", []*Policy{allowByPrincipal}, greeter, hello, &Peer{Principal: "cluster.local/ns/batch/sa/job"}, "", "", ""},
		{"namespace unknown: DENY does not fire", []*Policy{denyByPrincipal}, greeter, hello, local, "", "", ""},
		{"namespace known: DENY fires", []*Policy{denyByPrincipal}, greeter, hello, &Peer{Namespace: "dev"}, "default/deny-dev", "", ""},
		{"notPrincipals matches the unauthenticated", []*Policy{denyUnauthenticated}, greeter, hello, local, "default/deny-plaintext", "", ""},
		{"deny before allow", []*Policy{allowHello, denyByPrincipal}, greeter, hello, &Peer{Addr: local.Addr, Namespace: "dev"}, "default/deny-dev", "", ""},
		{"deny command", []*Policy{denyFlush}, "cache", headers("command", "flushall"), local, "default/no-flush", "", ""},
		{"deny key prefix", []*Policy{denyFlush}, "cache", headers("command", "get", "key", "secret:a"), local, "default/no-flush", "", ""},
		{"other key", []*Policy{denyFlush}, "cache", headers("command", "get", "key", "public:a"), local, "", "", ""},
		{"service-wide deny, other service", []*Policy{denyFlush}, greeter, headers("command", "flushall"), local, "", "", ""},
		{"dry-run deny counts", []*Policy{dryDenyRemote}, greeter, hello, remote, "", "default/dry-remote", ""},
		{"dry-run deny, no match", []*Policy{dryDenyRemote}, greeter, hello, local, "", "", ""},
		{"dry-run deny after enforced deny", []*Policy{dryDenyRemote, denyFlush}, "cache", headers("command", "flushall"), remote, "default/no-flush", "", ""},
		{"dry-run allow miss", []*Policy{dryAllowGreet}, greeter, other, local, "", "default/dry-allow", ""},
		{"dry-run allow match", []*Policy{dryAllowGreet}, greeter, bye, local, "", "", ""},
		{"dry-run allow, enforced allow granted", []*Policy{dryAllowGreet, allowByPrincipal}, greeter, other, &Peer{Principal: "cluster.local/ns/batch/sa/x"}, "", "", ""},
		{"audit", []*Policy{audit}, "anything", hello, local, "", "", "metamesh-system/audit"},
		{"audit and deny", []*Policy{audit, denyFlush}, "cache", headers("command", "flushall"), local, "default/no-flush", "", "metamesh-system/audit"},
		{"allow nothing", []*Policy{allowNothing}, "locked", hello, local, "default/allow-nothing", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(tc.policies).Check(tc.service, tc.service, tc.h, tc.peer)
			if got := name(d.Denied); got != tc.denied {
				t.Errorf("denied by %q, want %q", got, tc.denied)
			}
			if got := name(d.DryRunDenied); got != tc.dry {
				t.Errorf("dry-run denied by %q, want %q", got, tc.dry)
			}
			if got := name(d.Audited); got != tc.audited {
				t.Errorf("audited by %q, want %q", got, tc.audited)
			}
		})
	}
	// The target selects the policies, the named service is what
	// operations match.
	byTarget := New([]*Policy{allowHello, {Name: "default/not-internal", Action: Deny, Services: []string{greeter},
		Rules: []Rule{{To: []Operation{{Services: pats(t, "*.internal")}}}}}})
	if d := byTarget.Check(greeter, "other.Name", bye, local); name(d.Denied) != "default/allow-hello" {
		t.Errorf("a request served as the greeter naming another service: denied by %q, want the greeter's ALLOW", name(d.Denied))
	}
	if d := byTarget.Check(greeter, "x.internal", hello, local); name(d.Denied) != "default/not-internal" {
		t.Errorf("operations match the named service: denied by %q, want default/not-internal", name(d.Denied))
	}
	if d := byTarget.Check("other.Name", "other.Name", bye, local); d.Denied != nil {
		t.Errorf("another target: denied by %q, want no policy", d.Denied.Name)
	}
	if New(nil) != nil {
		t.Error("New(nil) is not nil")
	}
}

func name(p *Policy) string {
	if p == nil {
		return ""
	}
	return p.Name
}

// BenchmarkCheck is the cost of a request to a service with an ALLOW
// policy by method and source block (the greeter case).
func BenchmarkCheck(b *testing.B) {
	e := New([]*Policy{{Name: "default/allow-hello", Services: []string{greeter}, Rules: []Rule{{
		From: []Source{{IPBlocks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}},
		To:   []Operation{{Methods: pats(b, "sayHello")}},
	}}}})
	h := headers("service", greeter, "method", "sayHello", "version", "1.0.0")
	peer := &Peer{Addr: netip.MustParseAddr("127.0.0.1")}
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Check(greeter, greeter, h, peer); d.Denied != nil {
			b.Fatal("denied")
		}
	}
}

// Labels lists every policy label a decision can carry, the stand-in
// naming a service's ALLOW policies included, each once.
func TestLabels(t *testing.T) {
	e := New([]*Policy{
		{Name: "ns/a", Services: []string{"svc"}},
		{Name: "ns/b", Services: []string{"svc", "other"}},
		{Name: "ns/deny", Action: Deny},
		{Name: "ns/dry", Action: Deny, DryRun: true},
	})
	got := map[string]bool{}
	for _, l := range e.Labels() {
		if got[l] {
			t.Fatalf("label %q listed twice: %v", l, e.Labels())
		}
		got[l] = true
	}
	for _, want := range []string{"ns/a", "ns/b", "ns/a,ns/b", "ns/deny", "ns/dry"} {
		if !got[want] {
			t.Errorf("Labels() = %v lacks %q", e.Labels(), want)
		}
	}
	// What Check names is among them.
	dec := e.Check("svc", "svc", headers(), &Peer{})
	if dec.Denied == nil || !got[dec.Denied.Name] {
		t.Fatalf("Check denied with %+v, not one of the labels", dec.Denied)
	}
}
