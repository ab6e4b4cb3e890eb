package meshcapture

import (
	"context"
	"fmt"
	"net"
	"os/exec"
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

// A go-redis client (no sidecar) sends commands to a redis-server's pod
// address; the pod's sidecar captures them inbound and, the address being
// an endpoint of cache on the Redis port, serves each command through the
// Redis codec to the server at 127.0.0.1:6379.
func TestRedisCommandsAreServedPerRequestByTheServersSidecar(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (make test installs Debian's redis-server): ", err)
	}
	n := newNet(t)
	client, pod := n.Host("client"), n.Host("pod")
	// The server listens on loopback only: what reaches it came through
	// the proxy.
	direct := startRedisOn(t, pod, "127.0.0.1")
	applyInboundRules(t, pod)
	in := startSidecar(t, pod, fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis.test]
  ports: [{number: %[2]d, name: redis, protocol: redis}]
  endpoints: [{address: %[1]s}]
`, pod.Addr, redisPort), "--capture-inbound", "0.0.0.0:15006")

	ctx := context.Background()
	c := goRedis(client, net.JoinHostPort(pod.Addr.String(), fmt.Sprint(redisPort)))
	defer c.Close()
	const sets = 5
	for i := 0; i < sets; i++ {
		if err := c.Set(ctx, fmt.Sprintf("k%d", i), "v", 0).Err(); err != nil {
			t.Fatalf("set k%d through inbound capture: %v", i, err)
		}
	}
	if n, err := direct.Exists(ctx, "k0", "k4").Result(); err != nil || n != 2 {
		t.Fatalf("the keys on the server: %d, %v; want both", n, err)
	}
	labels := `{cluster="inbound|6379||",protocol="redis",route="inbound",service="cache.redis.test",status="ok"}`
	if got := in.metric("metamesh_requests_total", labels); got < sets {
		t.Errorf("the server's proxy: metamesh_requests_total%s = %v, want at least the %d SETs", labels, got, sets)
	}
	if got := in.metric("metamesh_inbound_connections_total", `{protocol="redis",result="forwarded"}`); got != 0 {
		t.Errorf("the server's proxy forwarded %v inbound Redis connections as bytes, want none", got)
	}
}

// An apache/thrift client (no sidecar) calls a Thrift server's pod
// address; the pod's sidecar serves each call inbound through the Thrift
// codec to the server on 127.0.0.1:9090.
func TestThriftCallsAreServedPerRequestByTheServersSidecar(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	client, pod := n.Host("client"), n.Host("pod")
	startThriftOn(t, pod, fmt.Sprintf("127.0.0.1:%d", thriftPort))
	applyInboundRules(t, pod)
	in := startSidecar(t, pod, fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.thrift.test]
  ports: [{number: %[2]d, name: thrift, protocol: thrift}]
  endpoints: [{address: %[1]s}]
`, pod.Addr, thriftPort), "--capture-inbound", "0.0.0.0:15006")

	c := mustOpenThrift(t, client, net.JoinHostPort(pod.Addr.String(), fmt.Sprint(thriftPort)))
	const calls = 5
	for i := 0; i < calls; i++ {
		if got := answeredBy(t, c, context.Background()); got != "pod" {
			t.Fatalf("call %d answered by %q", i, got)
		}
	}
	labels := `{cluster="inbound|9090||",protocol="thrift",route="inbound",service="echo.thrift.test",status="ok"}`
	if got := in.metric("metamesh_requests_total", labels); got != calls {
		t.Errorf("the server's proxy: metamesh_requests_total%s = %v, want %d", labels, got, calls)
	}
}
