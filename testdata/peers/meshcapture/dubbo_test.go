package meshcapture

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/proxy/capture/netnstest"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

const dubboPort = 20880

// startGreeter runs the dubbo-go greeter-server on h's address, answering
// "<h.Name>|<name>", until the test ends.
func startGreeter(t *testing.T, h *netnstest.Host) {
	t.Helper()
	startGreeterOn(t, h, net.JoinHostPort(h.Addr.String(), fmt.Sprint(dubboPort)))
}

// startGreeterOn is startGreeter listening on addr.
func startGreeterOn(t *testing.T, h *netnstest.Host, addr string) {
	t.Helper()
	cmd := exec.Command(harness.BuildGreeter(t), "--addr", addr, "--version", h.Name)
	out := &harness.SyncBuffer{}
	cmd.Stderr = out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.Start(t, cmd)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready ") {
				ready <- true
			}
		}
		ready <- false
	}()
	if !<-ready {
		t.Fatalf("greeter-server in %s exited before ready:\n%s", h.Name, out.String())
	}
}

// dubboConsumer starts a dubboclient helper process (a real dubbo-go
// consumer) in h, with a consumer of one connection to addr.
func dubboConsumer(t *testing.T, h *netnstest.Host, addr string) *dubboclient.Client {
	t.Helper()
	hp, err := dubboclient.StartHelper(func(cmd *exec.Cmd) error { return h.Do(cmd.Start) }, h.Dial)
	if err != nil {
		t.Fatalf("dubbo-go consumer in %s: %v", h.Name, err)
	}
	t.Cleanup(hp.Close)
	c, err := hp.New(addr, "", dubboclient.Options{Connections: 1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("dubbo-go consumer to %s: %v\n%s", addr, err, hp.Output())
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func sayHello(t *testing.T, c *dubboclient.Client, ctx context.Context) string {
	t.Helper()
	reply, err := c.SayHello(ctx, "x")
	if err != nil {
		t.Fatalf("SayHello: %v", err)
	}
	name, _, _ := strings.Cut(reply, "|")
	return name
}

func TestDubboGoConsumerDialingV1IsRouted(t *testing.T) {
	t.Parallel()
	n := newNet(t)
	consumer, v1, v2 := n.Host("consumer"), n.Host("v1"), n.Host("v2")
	startGreeter(t, v1)
	startGreeter(t, v2)
	dst := net.JoinHostPort(v1.Addr.String(), fmt.Sprint(dubboPort))
	iface := dubboclient.DefaultInterface
	batch := dubboclient.WithAttachments(context.Background(), map[string]string{"batchjob": "true"})

	applyRules(t, consumer, dubboPort)
	startSidecar(t, consumer, fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [%[1]s]
  ports:
  - {number: %[4]d, name: dubbo, protocol: dubbo}
  endpoints:
  - {address: %[2]s, labels: {version: v1}}
  - {address: %[3]s, labels: {version: v2}}
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: greeter, namespace: default}
spec:
  host: %[1]s
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: greeter, namespace: default}
spec:
  hosts: [%[1]s]
  routes:
  - name: batch
    match: {attributes: {batchjob: {exact: "true"}}}
    route: [{destination: {host: %[1]s, subset: v2}}]
  - name: canary
    route:
    - {destination: {host: %[1]s, subset: v1}, weight: 80}
    - {destination: {host: %[1]s, subset: v2}, weight: 20}
`, iface, v1.Addr, v2.Addr, dubboPort))

	// The proxy runs but the rules leave port 20880 alone: the batch call
	// lands where the consumer dialed. What follows is the capture's doing.
	if got := sayHello(t, dubboConsumer(t, consumer, dst), batch); got != "v1" {
		t.Fatalf("uncaptured, a batch call to v1's address answered by %q", got)
	}

	applyRules(t, consumer)
	c := dubboConsumer(t, consumer, dst)
	for i := 0; i < 5; i++ {
		if got := sayHello(t, c, batch); got != "v2" {
			t.Fatalf("captured batch call %d to v1's address answered by %q, want v2 (the batch route)", i, got)
		}
	}
	// 80/20: with 200 calls, v2 getting none or v1 not the most happens
	// with a probability below 1e-19.
	by := map[string]int{}
	for i := 0; i < 200; i++ {
		by[sayHello(t, c, context.Background())]++
	}
	if by["v1"]+by["v2"] != 200 || by["v2"] == 0 || by["v1"] <= by["v2"] {
		t.Fatalf("the canary split answered %v, want about 160 v1 and 40 v2", by)
	}
}
