package config_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/authz"
	"github.com/metamesh/metamesh/proxy/config"
)

func allowHello() *xdsapi.Authorization {
	return &xdsapi.Authorization{Policies: []*xdsapi.AuthorizationPolicy{{
		Name: "default/allow-hello", Services: []string{greetings},
		Rules: []*xdsapi.AuthorizationRule{{
			From: []*xdsapi.AuthorizationSource{{IpBlocks: []string{"127.0.0.1", "10.0.0.0/8"}}},
			To: []*xdsapi.AuthorizationOperation{{
				Methods:    []string{"say*"},
				Attributes: []*xdsapi.AttributeMatch{{Name: "debug", Pattern: &xdsapi.AttributeMatch_Exact{Exact: "true"}, Invert: true}},
			}},
		}},
	}}}
}

func TestAuthorization(t *testing.T) {
	res := load(t)
	editProxy(t, res, func(c *xdsapi.MetaProtocolProxy) { c.Authorization = allowHello() })
	s := build(t, config.NewBuilder(), res)
	l := s.Listeners[res.Listeners[0].GetName()]
	if l == nil || l.Authz == nil {
		t.Fatal("no Authz on the listener")
	}
	check := func(addr string, kv ...string) string {
		h := &protocols.Headers{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		d := l.Authz.Check(greetings, greetings, h, &authz.Peer{Addr: netip.MustParseAddr(addr)})
		if d.Denied == nil {
			return ""
		}
		return d.Denied.Name
	}
	for _, tc := range []struct {
		addr string
		kv   []string
		want string
	}{
		{"127.0.0.1", []string{"method", "sayHello"}, ""},
		{"10.1.2.3", []string{"method", "sayHi"}, ""},
		{"127.0.0.2", []string{"method", "sayHello"}, "default/allow-hello"},
		{"127.0.0.1", []string{"method", "greet"}, "default/allow-hello"},
		{"127.0.0.1", []string{"method", "sayHello", "debug", "true"}, "default/allow-hello"},
	} {
		if got := check(tc.addr, tc.kv...); got != tc.want {
			t.Errorf("%s %v: denied by %q, want %q", tc.addr, tc.kv, got, tc.want)
		}
	}

	// Without policies, the listener has no engine: nothing to check.
	res = load(t)
	for _, l := range build(t, config.NewBuilder(), res).Listeners {
		if l.Authz != nil {
			t.Errorf("listener %s has an Authz without policies", l.Name)
		}
	}
}

func TestAuthorizationRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(a *xdsapi.Authorization)
		want string
	}{
		{"no name", func(a *xdsapi.Authorization) { a.Policies[0].Name = "" }, "policies[0].name: required"},
		{"bad pattern", func(a *xdsapi.Authorization) { a.Policies[0].Rules[0].To[0].Methods = []string{"a*b"} }, "policies[0].rules[0].to[0].methods[0]"},
		{"bad ip block", func(a *xdsapi.Authorization) { a.Policies[0].Rules[0].From[0].NotIpBlocks = []string{"10.0.0.0/40"} }, "policies[0].rules[0].from[0].not_ip_blocks[0]"},
		{"bad regex", func(a *xdsapi.Authorization) {
			a.Policies[0].Rules[0].To[0].Attributes[0].Pattern = &xdsapi.AttributeMatch_Regex{Regex: "("}
		}, "policies[0].rules[0].to[0].attributes[0]"},
		{"unknown action", func(a *xdsapi.Authorization) { a.Policies[0].Action = 9 }, "policies[0].action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := load(t)
			a := allowHello()
			tc.edit(a)
			editProxy(t, res, func(c *xdsapi.MetaProtocolProxy) { c.Authorization = a })
			_, err := config.NewBuilder().Build(res)
			if err == nil || !strings.Contains(err.Error(), "typed_config.authorization."+tc.want) {
				t.Fatalf("Build = %v, want an error at %s", err, tc.want)
			}
		})
	}
}

// TestOutboundAuthorization: a sidecar's outbound side, whose caller is
// its own workload with no identity of its own on the connection, leaves
// the policies asking for a principal or namespace to the destination's
// inbound side (which learns the caller from mutual TLS), and checks the
// others.
func TestOutboundAuthorization(t *testing.T) {
	res := load(t)
	editProxy(t, res, func(c *xdsapi.MetaProtocolProxy) {
		c.Authorization = &xdsapi.Authorization{Policies: []*xdsapi.AuthorizationPolicy{
			{Name: "default/batch-only", Services: []string{greetings},
				Rules: []*xdsapi.AuthorizationRule{{From: []*xdsapi.AuthorizationSource{{Namespaces: []string{"batch"}}}}}},
			{Name: "default/no-debug", Action: xdsapi.AuthorizationPolicy_DENY,
				Rules: []*xdsapi.AuthorizationRule{{To: []*xdsapi.AuthorizationOperation{{Methods: []string{"debug"}}}}}},
		}}
	})
	l := build(t, config.NewBuilder(), res).Listeners[res.Listeners[0].GetName()]
	check := func(e *authz.Engine, ns, method string) string {
		h := &protocols.Headers{}
		h.Set("method", method)
		if d := e.Check(greetings, greetings, h, &authz.Peer{Addr: netip.MustParseAddr("127.0.0.1"), Namespace: ns}); d.Denied != nil {
			return d.Denied.Name
		}
		return ""
	}
	for _, tc := range []struct {
		name              string
		ns, method        string
		inbound, outbound string
	}{
		{"caller of namespace batch", "batch", "sayHello", "", ""},
		{"caller without identity", "", "sayHello", "default/batch-only", ""},
		{"caller of another namespace", "dev", "sayHello", "default/batch-only", ""},
		{"a denied method", "", "debug", "default/no-debug", "default/no-debug"},
	} {
		if got := check(l.Authz, tc.ns, tc.method); got != tc.inbound {
			t.Errorf("%s, inbound: denied by %q, want %q", tc.name, got, tc.inbound)
		}
		if got := check(l.OutboundAuthz, tc.ns, tc.method); got != tc.outbound {
			t.Errorf("%s, outbound: denied by %q, want %q", tc.name, got, tc.outbound)
		}
	}

	// Without policies asking for an identity, both sides check the same.
	editProxy(t, res, func(c *xdsapi.MetaProtocolProxy) { c.Authorization = allowHello() })
	l = build(t, config.NewBuilder(), res).Listeners[res.Listeners[0].GetName()]
	if l.OutboundAuthz != l.Authz {
		t.Error("a listener whose policies ask for no identity has another engine for outbound")
	}
}
