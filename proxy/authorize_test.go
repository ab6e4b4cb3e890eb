package proxy

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/config"
)

// allowHello allows only sayHello, from loopback.
const allowHello = `{policies: [{name: default/allow-hello, services: ["` + svc + `"],
  rules: [{from: [{ip_blocks: [127.0.0.0/8]}], to: [{methods: [sayHello]}]}]}]}`

func TestAuthorizationDeniesWithTheCodecsReply(t *testing.T) {
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{up.addr()}, Authz: `{policies: [
  {name: metamesh-system/audit-all, action: AUDIT, rules: [{}]},
  {name: default/no-debug, action: DENY, rules: [{to: [{attributes: [{name: debug, exact: "true"}]}]}]},
  {name: default/dry-no-v2, action: DENY, dry_run: true, rules: [{to: [{attributes: [{name: lane, exact: v2}]}]}]},
  {name: default/allow-hello, services: ["` + svc + `"], rules: [{from: [{ip_blocks: [127.0.0.0/8]}], to: [{methods: [sayHello]}]}]}]}`})
	c := dial(t, addr)
	m := srv.Metrics().Authz

	if status, value := c.call(1, svc, "sayHello"); status != 20 || !strings.HasPrefix(value, "v1|sayHello|") {
		t.Fatalf("sayHello: status %d %q, want v1's reply", status, value)
	}
	status, value := c.call(2, svc, "sayGoodbye")
	if status != 40 || !strings.Contains(value, "authorization policy default/allow-hello") || !strings.Contains(value, svc) {
		t.Fatalf("sayGoodbye: status %d %q, want 40 naming the policy and the service", status, value)
	}
	status, value = c.call(3, svc, "sayHello", header("debug", "true"))
	if status != 40 || !strings.Contains(value, "denied by authorization policy default/no-debug") {
		t.Fatalf("sayHello with debug: status %d %q, want the DENY policy's denial", status, value)
	}
	// The connection stays up; a dry-run policy only counts.
	if status, value := c.call(4, svc, "sayHello", header("lane", "v2")); status != 20 || !strings.HasPrefix(value, "v1|sayHello|") {
		t.Fatalf("after denials, dry-run match: status %d %q, want v1's reply", status, value)
	}
	for name, want := range map[string]float64{"default/allow-hello": 1, "default/no-debug": 1, "default/dry-no-v2": 0} {
		if got := testutil.ToFloat64(m.Denied.WithLabelValues(name)); got != want {
			t.Errorf("metamesh_requests_denied_total{policy=%q} = %v, want %v", name, got, want)
		}
	}
	if got := testutil.ToFloat64(m.DryRunDenied.WithLabelValues("default/dry-no-v2")); got != 1 {
		t.Errorf("metamesh_authz_dry_run_denied_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Audited.WithLabelValues("metamesh-system/audit-all")); got != 4 {
		t.Errorf("metamesh_requests_audited_total = %v, want 4", got)
	}
	if got := testutil.ToFloat64(srv.Metrics().Requests.WithLabelValues("dubbo", svc, "", "", "denied")); got != 2 {
		t.Errorf(`metamesh_requests_total{status="denied"} = %v, want 2`, got)
	}
	if got := testutil.ToFloat64(srv.Metrics().LocalReplies.WithLabelValues("dubbo", protocols.ReasonDenied.String())); got != 2 {
		t.Errorf(`metamesh_local_replies_total{reason="denied"} = %v, want 2`, got)
	}
}

// A caller outside the allowed block is denied whatever it calls.
func TestAuthorizationBySourceBlock(t *testing.T) {
	up := startEcho(t, "v1")
	_, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{up.addr()},
		Authz: `{policies: [{name: default/only-10, rules: [{from: [{ip_blocks: [10.0.0.0/8]}]}]}]}`})
	c := dial(t, addr)
	if status, value := c.call(1, svc, "sayHello"); status != 40 || !strings.Contains(value, "default/only-10") {
		t.Fatalf("status %d %q, want the denial", status, value)
	}
}

// On a port that serves one service whatever service requests name, the
// service's policies apply to every request it serves.
func TestAuthorizationFollowsTheServingHost(t *testing.T) {
	up := startEcho(t, "v1")
	_, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{up.addr()}, Wildcard: true, Authz: allowHello})
	c := dial(t, addr)
	if status, value := c.call(1, "com.example.Other", "sayHello"); status != 20 || !strings.HasPrefix(value, "v1|sayHello|") {
		t.Fatalf("sayHello naming another service: status %d %q, want v1's reply", status, value)
	}
	status, value := c.call(2, "com.example.Other", "sayGoodbye")
	if status != 40 || !strings.Contains(value, "default/allow-hello") || !strings.Contains(value, "com.example.Other") {
		t.Fatalf("sayGoodbye naming another service: status %d %q, want the greeter's denial", status, value)
	}
}

func TestPeerOf(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	srvSide, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srvSide.Close()
	if p := peerOf(srvSide); p.Addr.String() != "127.0.0.1" || p.Principal != "" || p.Namespace != "" {
		t.Fatalf("peerOf = %+v, want 127.0.0.1 and no identity", p)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if p := peerOf(a); p.Addr.IsValid() {
		t.Fatalf("peerOf(pipe) = %+v, want no address", p)
	}
}

// BenchmarkAuthorize is the authorization step's cost on a listener
// without policies (one nil check) and with the greeter's ALLOW policy.
func BenchmarkAuthorize(b *testing.B) {
	for _, bc := range []struct{ name, authz string }{{"none", ""}, {"allow-hello", allowHello}} {
		b.Run(bc.name, func(b *testing.B) {
			up := startEcho(b, "v1")
			srv, _ := startProxy(b, setup{V1: []string{up.addr()}, V2: []string{up.addr()}, Authz: bc.authz})
			snap := srv.snap.Load()
			cfg := snap.Listeners["dubbo"]
			table := snap.Routes[cfg.RouteConfig]
			vh := table.Lookup(svc)
			a, p := net.Pipe()
			defer a.Close()
			defer p.Close()
			d := &downstream{srv: srv, nc: a}
			d.peer.Addr = netip.MustParseAddr("127.0.0.1")
			m := &protocols.Message{Kind: protocols.KindRequest}
			m.Headers.Set("service", svc)
			m.Headers.Set("method", "sayHello")
			b.ReportAllocs()
			for b.Loop() {
				if out := d.authorize(cfg, table, vh, svc, m); out != nil {
					b.Fatal(out.text)
				}
			}
		})
	}
}

// TestOutboundCaptureLeavesIdentityPoliciesToInbound: an outbound captured
// connection is served with the listener's OutboundAuthz (no policy
// asking for the caller's identity, which the destination's sidecar
// checks), the listener's own config left as it is.
func TestOutboundCaptureLeavesIdentityPoliciesToInbound(t *testing.T) {
	srv, _ := startProxy(t, setup{V1: []string{"127.0.0.1:1"}, V2: []string{"127.0.0.1:1"}, Authz: `{policies: [{name: default/batch-only,
  rules: [{from: [{namespaces: [batch]}]}]}]}`})
	var cfg *config.Listener
	for _, l := range srv.snap.Load().Listeners {
		cfg = l
	}
	if cfg == nil || cfg.Authz == nil || cfg.OutboundAuthz != nil {
		t.Fatalf("listener Authz %v, OutboundAuthz %v: want a namespace policy inbound only", cfg.Authz, cfg.OutboundAuthz)
	}
	if out := outbound(cfg); out.Authz != nil || cfg.Authz == nil || out.Codec != cfg.Codec {
		t.Fatalf("outbound: Authz %v (want none), the listener's %v (want kept)", out.Authz, cfg.Authz)
	}
}
