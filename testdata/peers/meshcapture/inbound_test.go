package meshcapture

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
)

// A dubbo-go consumer calls a dubbo-go provider by its address. Both pods
// have sidecars: the consumer's captures the call outbound, the
// provider's captures it inbound and, the provider's address being an
// endpoint of greeter, serves it through the Dubbo codec: each call is a
// request of its own to the application at 127.0.0.1:20880, counted by
// the provider's proxy under the inbound names (docs/mesh-mode.md).
func TestDubboGoCallIsServedPerRequestByTheProvidersSidecar(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	consumer, provider := n.Host("consumer"), n.Host("provider")
	// The application listens on every address: the proxy reaches it at
	// 127.0.0.1.
	startGreeterOn(t, provider, fmt.Sprintf("0.0.0.0:%d", dubboPort))
	iface := dubboclient.DefaultInterface
	mesh := fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [%[1]s]
  ports:
  - {number: %[3]d, name: dubbo, protocol: dubbo}
  endpoints:
  - {address: %[2]s}
`, iface, provider.Addr, dubboPort)
	applyRules(t, consumer)
	out := startSidecar(t, consumer, mesh)
	applyInboundRules(t, provider)
	in := startSidecar(t, provider, mesh, "--capture-inbound", "0.0.0.0:15006")

	c := dubboConsumer(t, consumer, net.JoinHostPort(provider.Addr.String(), fmt.Sprint(dubboPort)))
	const calls = 5
	for i := 0; i < calls; i++ {
		if got := sayHello(t, c, context.Background()); got != "provider" {
			t.Fatalf("call %d answered by %q", i, got)
		}
	}

	requests := `{cluster="inbound|20880||",protocol="dubbo",route="inbound",service="` + iface + `",status="ok"}`
	if got := in.metric("metamesh_requests_total", requests); got != calls {
		t.Errorf("the provider's proxy: metamesh_requests_total%s = %v, want %d", requests, got, calls)
	}
	if got := in.metric("metamesh_inbound_connections_total", `{protocol="dubbo",result="served"}`); got < 1 {
		t.Errorf("the provider's proxy served %v inbound Dubbo connections through the codec, want at least 1", got)
	}
	if got := in.metric("metamesh_inbound_connections_total", `{protocol="dubbo",result="forwarded"}`); got != 0 {
		t.Errorf("the provider's proxy forwarded %v inbound Dubbo connections as bytes, want none", got)
	}
	if got := in.metric("metamesh_downstream_cx_total", `{listener="inbound|20880|dubbo-20880"}`); got < 1 {
		t.Errorf("the inbound listener accepted %v connections, want at least 1", got)
	}
	// The caller's proxy counted the same calls outbound.
	if got := out.metric("metamesh_capture_outbound_connections_total", `{outcome="served"}`); got < 1 {
		t.Errorf("the consumer's proxy served %v captured connections, want at least 1", got)
	}
}
