package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/metamesh/metamesh/controlplane/xds/xdstest"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

var xdsGreetingsTmpl = template.Must(template.New("").Parse(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greetings}
spec:
  hosts: [{{.Iface}}]
  ports: [{number: {{.Port}}, name: dubbo, protocol: dubbo}]
  endpoints:
  - {address: 127.0.0.1, ports: {dubbo: {{.V1}}}, labels: {version: v1}}
  - {address: 127.0.0.1, ports: {dubbo: {{.V2}}}, labels: {version: v2}}
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: greetings}
spec:
  host: {{.Iface}}
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: greetings}
spec:
  hosts: [{{.Iface}}]
  routes:
  - name: all
    route: [{destination: {host: {{.Iface}}, subset: {{.Subset}}}}]
`))

// A protocol whose codec the metamesh binary does not have: the control
// plane (which leaves codecs to the proxies) serves it, the proxy refuses
// its listener.
var unknownCodecTmpl = template.Must(template.New("").Parse(`apiVersion: metamesh.io/v1alpha1
kind: ApplicationProtocol
metadata: {name: my-rpc}
spec: {codec: my-rpc}
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: my-service}
spec:
  hosts: [com.example.MyService]
  ports: [{number: {{.}}, name: rpc, protocol: my-rpc}]
  endpoints: [{address: 127.0.0.1}]
`))

type xdsConfig struct {
	Iface, Port, V1, V2, Subset string
}

// writeFile replaces dir/name atomically with the template's output.
func writeFile(t testing.TB, dir, name string, tmpl *template.Template, data any) {
	t.Helper()
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// replyFrom calls the service once and returns the version that answered
// ("" on error).
func replyFrom(cl *dubboclient.Client, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := cl.SayHello(ctx, name)
	if err != nil || !strings.HasSuffix(got, "|"+name) {
		return ""
	}
	return versionOf(got)
}

// allFrom makes n calls and fails the test unless every one is answered
// by version.
func allFrom(t *testing.T, cl *dubboclient.Client, version string, n int, why string) {
	t.Helper()
	for i := range n {
		if got := replyFrom(cl, payload(0, i)); got != version {
			t.Fatalf("%s: call %d answered by %q, want %s", why, i, got, version)
		}
	}
}

type debugProxies struct {
	Versions map[string]string `json:"versions"`
	Proxies  []struct {
		Node     string            `json:"node"`
		Acked    map[string]string `json:"acked"`
		LastNack *struct {
			Type, Version, Error string
		} `json:"last_nack"`
	} `json:"proxies"`
}

func proxies(t testing.TB, admin string) debugProxies {
	t.Helper()
	var d debugProxies
	_ = json.Unmarshal([]byte(get(t, admin, "/debug/proxies")), &d)
	return d
}

func ready(t testing.TB, admin string) bool {
	return strings.HasPrefix(get(t, admin, "/ready"), "ready")
}

// TestXDSDistributedMode runs `metamesh controlplane` on a config folder
// and `metamesh proxy --xds` as separate processes, over mutual TLS, with
// real dubbo-go providers and a dubbo-go consumer: traffic follows the
// config, an edit reroutes it, killing the control plane leaves traffic
// flowing, a restarted control plane resyncs the proxy, and a config the
// proxy refuses is NACKed, reported by the control plane and leaves the old
// config in force.
func TestXDSDistributedMode(t *testing.T) {
	bin := harness.BuildMetamesh(t)
	v1, v2 := greeters(t)
	dir, pki := t.TempDir(), t.TempDir()
	listen := harness.FreeAddr(t)
	cfg := &xdsConfig{Iface: iface, Port: portOf(listen), V1: portOf(v1.Addr), V2: portOf(v2.Addr), Subset: "v1"}
	writeFile(t, dir, "greetings.yaml", xdsGreetingsTmpl, cfg)

	ca := xdstest.NewCA(t, "metamesh-test-ca")
	server, client := ca.Server(t), ca.Client(t, "proxy-1")
	caFile := xdstest.WriteFile(t, pki, "ca.crt", ca.CertPEM())
	xdsAddr, cpAdmin, proxyAdmin := harness.FreeAddr(t), harness.FreeAddr(t), harness.FreeAddr(t)
	cpArgs := []string{"controlplane", "--config", dir, "--xds", xdsAddr, "--admin", cpAdmin,
		"--listen-address", "127.0.0.1", "--log-format", "json",
		"--xds-cert", xdstest.WriteFile(t, pki, "server.crt", server.CertPEM),
		"--xds-key", xdstest.WriteFile(t, pki, "server.key", server.KeyPEM),
		"--xds-client-ca", caFile}
	startCP := func() *harness.Process {
		cp := harness.StartProcess(t, "metamesh controlplane", bin, cpArgs...)
		waitFor(t, 20*time.Second, "the control plane's /ready", func() bool { return ready(t, cpAdmin) })
		return cp
	}
	cp := startCP()
	harness.StartProcess(t, "metamesh proxy", bin, "proxy", "--xds", xdsAddr, "--node", "proxy-1", "--admin", proxyAdmin,
		"--log-format", "json", "--xds-ca", caFile, "--xds-server-name", "localhost",
		"--xds-cert", xdstest.WriteFile(t, pki, "proxy.crt", client.CertPEM),
		"--xds-key", xdstest.WriteFile(t, pki, "proxy.key", client.KeyPEM))
	waitFor(t, 20*time.Second, "the proxy's /ready", func() bool { return ready(t, proxyAdmin) })
	waitFor(t, 5*time.Second, "the listener", func() bool {
		nc, err := net.DialTimeout("tcp", listen, 100*time.Millisecond)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
	cl := newClient(t, listen, dubboclient.Options{})
	allFrom(t, cl, "v1", 50, "the first config")
	if d := proxies(t, cpAdmin); len(d.Proxies) != 1 || d.Proxies[0].Node != "proxy-1" || d.Proxies[0].Acked["route"] != d.Versions["route"] {
		t.Fatalf("/debug/proxies: %+v; want proxy-1 with the route version ACKed", d)
	}

	// An edit reroutes.
	cfg.Subset = "v2"
	writeFile(t, dir, "greetings.yaml", xdsGreetingsTmpl, cfg)
	waitFor(t, 10*time.Second, "the edit to reach the proxy", func() bool { return replyFrom(cl, "probe") == "v2" })
	allFrom(t, cl, "v2", 50, "after the edit")

	// The control plane dies: the proxy keeps serving on its last config.
	cp.Kill()
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if got := replyFrom(cl, payload(1, i)); got != "v2" {
			t.Fatalf("with the control plane dead, call %d answered by %q, want v2", i, got)
		}
	}
	if !ready(t, proxyAdmin) {
		t.Fatal("the proxy is not ready any more with the control plane dead")
	}

	// Edited while it was down, the restarted control plane resyncs the proxy.
	cfg.Subset = "v1"
	writeFile(t, dir, "greetings.yaml", xdsGreetingsTmpl, cfg)
	restarted := time.Now()
	cp = startCP()
	waitFor(t, 30*time.Second, "the proxy to resync with the restarted control plane", func() bool { return replyFrom(cl, "probe") == "v1" })
	t.Logf("resynced %v after the restart", time.Since(restarted).Round(time.Millisecond))
	allFrom(t, cl, "v1", 50, "after the resync")

	// A listener the proxy can't apply: NACKed, reported, old config kept.
	nackPort := portOf(harness.FreeAddr(t))
	writeFile(t, dir, "my-rpc.yaml", unknownCodecTmpl, nackPort)
	waitFor(t, 10*time.Second, "the NACK in /debug/proxies", func() bool {
		d := proxies(t, cpAdmin)
		return len(d.Proxies) == 1 && d.Proxies[0].LastNack != nil
	})
	d := proxies(t, cpAdmin)
	nack := d.Proxies[0].LastNack
	if nack.Type != "listener" || nack.Version != d.Versions["listener"] || !strings.Contains(nack.Error, "my-rpc") {
		t.Fatalf("last NACK %+v; want the listener version %s refused for codec my-rpc", nack, d.Versions["listener"])
	}
	if d.Proxies[0].Acked["listener"] == d.Versions["listener"] {
		t.Fatal("the refused listener version is reported ACKed")
	}
	if n := metricValue(get(t, cpAdmin, "/metrics"), `metamesh_controlplane_xds_nacks_total{type="listener"}`); n < 1 {
		t.Fatalf("control plane nacks_total{type=listener} = %v", n)
	}
	if n := metricValue(get(t, proxyAdmin, "/metrics"), `metamesh_xds_updates_total{result="nack",type="listener"}`); n < 1 {
		t.Fatalf("proxy xds_updates_total{nack,listener} = %v", n)
	}
	if !strings.Contains(cp.Output(), "NACK") || !strings.Contains(cp.Output(), `"node":"proxy-1"`) {
		t.Fatal("the control plane did not log the NACK with the node")
	}
	allFrom(t, cl, "v1", 50, "after the NACK")
	if nc, err := net.DialTimeout("tcp", "127.0.0.1:"+nackPort, 200*time.Millisecond); err == nil {
		nc.Close()
		t.Fatal("the refused listener is bound")
	}
}
