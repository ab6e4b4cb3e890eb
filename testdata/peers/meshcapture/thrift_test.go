package meshcapture

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/metamesh/metamesh/proxy/capture/netnstest"
	peers "github.com/metamesh/metamesh/testdata/peers/thrift"
)

// THeader carries the batchjob info header the MetaRouter matches.
var combo = peers.Combo{Transport: "header", Protocol: "binary"}

const thriftPort = 9090

// thriftMesh is a ServiceEntry for Thrift servers v1 and v2 on port 9090
// of their own addresses: batchjob=true goes to v2, the rest 80/20.
func thriftMesh(v1, v2 *netnstest.Host) string {
	return fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.thrift.test]
  ports:
  - {number: %[3]d, name: thrift, protocol: thrift}
  endpoints:
  - {address: %[1]s, labels: {version: v1}}
  - {address: %[2]s, labels: {version: v2}}
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: echo, namespace: default}
spec:
  host: echo.thrift.test
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.thrift.test]
  routes:
  - name: batch
    match: {attributes: {batchjob: {exact: "true"}}}
    route: [{destination: {host: echo.thrift.test, subset: v2}}]
  - name: canary
    route:
    - {destination: {host: echo.thrift.test, subset: v1}, weight: 80}
    - {destination: {host: echo.thrift.test, subset: v2}, weight: 20}
`, v1.Addr, v2.Addr, thriftPort)
}

// startThrift runs an apache/thrift server named after h on h's address.
func startThrift(t *testing.T, h *netnstest.Host) {
	t.Helper()
	startThriftOn(t, h, net.JoinHostPort(h.Addr.String(), fmt.Sprint(thriftPort)))
}

// startThriftOn is startThrift listening on addr.
func startThriftOn(t *testing.T, h *netnstest.Host, addr string) {
	t.Helper()
	var stop func()
	if err := h.Do(func() (err error) {
		_, stop, err = peers.Serve(h.Name, addr, combo)
		return err
	}); err != nil {
		t.Fatalf("thrift server in %s: %v", h.Name, err)
	}
	t.Cleanup(stop)
}

// openThrift opens an unmodified apache/thrift client in h to addr.
func openThrift(h *netnstest.Host, addr string) (*peers.Client, error) {
	var c *peers.Client
	err := h.Do(func() (err error) {
		c, err = peers.Open(addr, combo, "")
		return err
	})
	return c, err
}

func mustOpenThrift(t *testing.T, h *netnstest.Host, addr string) *peers.Client {
	t.Helper()
	c, err := openThrift(h, addr)
	if err != nil {
		t.Fatalf("thrift client to %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

var batch = func() context.Context { return peers.WithHeader(context.Background(), "batchjob", "true") }

// answeredBy is the server name an echo reply ("<name>|<msg>|<tag>") carries.
func answeredBy(t *testing.T, c *peers.Client, ctx context.Context) string {
	t.Helper()
	reply, err := c.Echo(ctx, "hi")
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	name, _, _ := strings.Cut(reply, "|")
	return name
}

func TestThriftClientDialingV1IsRouted(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	consumer, v1, v2 := n.Host("consumer"), n.Host("v1"), n.Host("v2")
	startThrift(t, v1)
	startThrift(t, v2)
	dst := net.JoinHostPort(v1.Addr.String(), fmt.Sprint(thriftPort))

	// The proxy runs but the rules leave port 9090 alone: the batch call
	// lands where the client dialed. What follows is the capture's doing.
	applyRules(t, consumer, thriftPort)
	startSidecar(t, consumer, thriftMesh(v1, v2))
	if got := answeredBy(t, mustOpenThrift(t, consumer, dst), batch()); got != "v1" {
		t.Fatalf("uncaptured, a batch call to v1's address answered by %q", got)
	}

	applyRules(t, consumer)
	c := mustOpenThrift(t, consumer, dst)
	for i := 0; i < 5; i++ {
		if got := answeredBy(t, c, batch()); got != "v2" {
			t.Fatalf("captured batch call %d to v1's address answered by %q, want v2 (the batch route)", i, got)
		}
	}
	// 80/20: with 200 calls, v2 getting none or v1 not the most happens
	// with a probability below 1e-19.
	by := map[string]int{}
	for i := 0; i < 200; i++ {
		by[answeredBy(t, c, context.Background())]++
	}
	if by["v1"]+by["v2"] != 200 || by["v2"] == 0 || by["v1"] <= by["v2"] {
		t.Fatalf("the canary split answered %v, want about 160 v1 and 40 v2", by)
	}
}

func TestKilledSidecarRefusesThenRecovers(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	consumer, v1, v2 := n.Host("consumer"), n.Host("v1"), n.Host("v2")
	startThrift(t, v1)
	startThrift(t, v2)
	dst := net.JoinHostPort(v1.Addr.String(), fmt.Sprint(thriftPort))
	applyRules(t, consumer)
	proxy := startSidecar(t, consumer, thriftMesh(v1, v2))
	if got := answeredBy(t, mustOpenThrift(t, consumer, dst), batch()); got != "v2" {
		t.Fatalf("batch call answered by %q, want v2", got)
	}

	proxy.kill()
	// The rules still send the connection to the capture port, where
	// nothing listens: refused at once. (The client's timeouts are 5 s
	// to connect and 10 s per call: a hang would end in a timeout, not
	// in ECONNREFUSED.)
	for i := 0; i < 3; i++ {
		c, err := openThrift(consumer, dst)
		if err == nil {
			_ = c.Close()
			t.Fatalf("with the proxy killed, a client to %s connected", dst)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("with the proxy killed, the client got %v, want connection refused", err)
		}
	}

	// The same client configuration, once the proxy is back.
	proxy.start()
	if got := answeredBy(t, mustOpenThrift(t, consumer, dst), batch()); got != "v2" {
		t.Fatalf("after the restart, batch call answered by %q, want v2", got)
	}
}
