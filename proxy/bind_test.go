package proxy

import (
	"net"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestBindToPortFalse: a listener with bind_to_port false is in the
// config (served by the capture ports) but its address is not bound; a
// bound listener turned unbound stops accepting, keeping its connections,
// and binds again when turned back.
func TestBindToPortFalse(t *testing.T) {
	up := startEcho(t, "v1")
	cfg := setup{Listen: freeAddr(t), V1: []string{up.addr()}}
	srv, addr := startProxy(t, cfg)
	c := dial(t, addr)
	if status, _ := c.call(1, svc, "m"); status != 20 {
		t.Fatalf("bound: status %d", status)
	}

	res := cfg.resources(t)
	res.Listeners[0].BindToPort = wrapperspb.Bool(false)
	if err := srv.Apply(res); err != nil {
		t.Fatalf("Apply with bind_to_port false: %v", err)
	}
	if got := srv.ListenerAddr("dubbo"); got != "" {
		t.Fatalf("an unbound listener is on %q", got)
	}
	if l := srv.Snapshot().Listeners["dubbo"]; l == nil || l.Bind {
		t.Fatalf("the config's listener: %+v, want it there, unbound", l)
	}
	// The address is free: the proxy no longer holds it.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the unbound listener's address is still held: %v", err)
	}
	_ = ln.Close()
	if status, _ := c.call(2, svc, "m"); status != 20 {
		t.Fatalf("the connection accepted before: status %d", status)
	}

	res.Listeners[0].BindToPort = wrapperspb.Bool(true)
	if err := srv.Apply(res); err != nil {
		t.Fatalf("Apply with bind_to_port true: %v", err)
	}
	if status, _ := dial(t, addr).call(3, svc, "m"); status != 20 {
		t.Fatalf("bound again: status %d", status)
	}
}
