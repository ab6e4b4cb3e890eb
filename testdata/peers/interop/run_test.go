package interop

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

var greetingsTmpl = template.Must(template.New("").Parse(`apiVersion: metamesh.io/v1alpha1
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
  - name: batchjob-isolation
    match: {attributes: {batchjob: {exact: "true"}}}
    route: [{destination: {host: {{.Iface}}, subset: v2}}]
  - name: canary
    route:
    - {destination: {host: {{.Iface}}, subset: v1}, weight: {{.W1}}}
    - {destination: {host: {{.Iface}}, subset: v2}, weight: {{.W2}}}
`))

type runConfig struct {
	Iface         string
	Port, V1, V2  string
	W1, W2        int
	dir, listen   string
	adminAddr     string
	stderr        *harness.SyncBuffer
	calls, failed atomic.Int64
}

// write replaces the config file atomically, as an editor or a ConfigMap
// update does.
func (c *runConfig) write(t testing.TB) {
	t.Helper()
	var buf bytes.Buffer
	if err := greetingsTmpl.Execute(&buf, c); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(c.dir, ".greetings.yaml.tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "greetings.yaml")); err != nil {
		t.Fatal(err)
	}
}

// share sends n calls (16 callers) and returns v1's share in percent.
func (c *runConfig) share(t testing.TB, cl *dubboclient.Client, n int) float64 {
	t.Helper()
	var v1, total atomic.Int64
	parallel(t, 16, n/16, func(g, i int) {
		got, err := cl.SayHello(context.Background(), payload(g, i))
		c.calls.Add(1)
		if err != nil || !strings.HasSuffix(got, "|"+payload(g, i)) {
			if c.failed.Add(1) <= 5 {
				t.Errorf("call %d/%d: %q, %v", g, i, got, err)
			}
			return
		}
		total.Add(1)
		if versionOf(got) == "v1" {
			v1.Add(1)
		}
	})
	return 100 * float64(v1.Load()) / float64(max(total.Load(), 1))
}

// TestRunAppliesEditsLive drives `metamesh run` on a folder: the 80/20
// split holds, an edit to 50/50 takes effect within 2 s with no failed call
// and no client connection closed, and an invalid edit leaves 50/50 in
// force with the reason logged and `metamesh validate` naming the field.
func TestRunAppliesEditsLive(t *testing.T) {
	bin := harness.BuildMetamesh(t)
	v1, v2 := greeters(t)
	c := &runConfig{Iface: iface, W1: 80, W2: 20, dir: t.TempDir(), listen: harness.FreeAddr(t), adminAddr: harness.FreeAddr(t), stderr: &harness.SyncBuffer{}}
	c.Port, c.V1, c.V2 = portOf(c.listen), portOf(v1.Addr), portOf(v2.Addr)
	c.write(t)

	startRun(t, bin, c.dir, c.adminAddr, c.listen, c.stderr)
	cl := newClient(t, c.listen, dubboclient.Options{})

	if s := c.share(t, cl, 2000); s < 75 || s > 85 {
		t.Fatalf("v1 share %.1f%% under the 80/20 config, want 80 ± 5", s)
	}

	// The readiness probe above opened and closed one connection: count
	// closures from here on.
	closedBefore := closedConns(t, c.adminAddr)
	c.W1, c.W2 = 50, 50
	edited := time.Now()
	c.write(t)
	waitFor(t, 2*time.Second, "the 50/50 edit in /config_dump", func() bool {
		return weight50.MatchString(get(t, c.adminAddr, "/config_dump"))
	})
	t.Logf("the edit was in force %v after the write", time.Since(edited).Round(time.Millisecond))
	if s := c.share(t, cl, 2000); s < 45 || s > 55 {
		t.Fatalf("v1 share %.1f%% after the edit to 50/50, want 50 ± 5", s)
	}

	c.W1, c.W2 = 60, 20 // weights add up to 80: invalid
	c.write(t)
	waitFor(t, 5*time.Second, "the invalid edit to be logged", func() bool {
		return strings.Contains(c.stderr.String(), "spec.routes[1].route")
	})
	if s := c.share(t, cl, 1000); s < 43 || s > 57 {
		t.Fatalf("v1 share %.1f%% after an invalid edit, want the last good 50/50", s)
	}
	out, err := exec.Command(bin, "validate", c.dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "MetaRouter/greetings: spec.routes[1].route") {
		t.Fatalf("metamesh validate: err %v; want exit 1 naming the field, output:\n%s", err, out)
	}

	if f := c.failed.Load(); f > 0 {
		t.Fatalf("%d of %d calls failed across the edits", f, c.calls.Load())
	}
	if closed := closedConns(t, c.adminAddr) - closedBefore; closed != 0 {
		t.Fatalf("%v client connections were closed across the edits", closed)
	}
}

// closedConns is how many client connections the proxy has seen end.
func closedConns(t testing.TB, admin string) float64 {
	m := get(t, admin, "/metrics")
	return metricValue(m, "metamesh_downstream_cx_total") - metricValue(m, "metamesh_downstream_cx_active")
}

var weight50 = regexp.MustCompile(`"weight":\s*50\b`)

// startRun runs `metamesh run` on dir until the test ends and waits for
// its listener.
func startRun(t testing.TB, bin, dir, admin, listen string, stderr *harness.SyncBuffer, extra ...string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"run", "--config", dir, "--listen-address", "127.0.0.1", "--admin", admin, "--log-format", "json"}, extra...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("metamesh run output:\n%s", stderr.String())
		}
	})
	waitFor(t, 20*time.Second, "the listener", func() bool {
		nc, err := net.DialTimeout("tcp", listen, 100*time.Millisecond)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(t testing.TB, addr, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue sums the samples of a metric in Prometheus text format.
func metricValue(text, name string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
