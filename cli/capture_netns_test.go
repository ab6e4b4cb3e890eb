package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/proxy/capture/iptables"
	"github.com/metamesh/metamesh/proxy/capture/netnstest"
	"github.com/metamesh/metamesh/proxy/wire"
)

// These tests run the metamesh binary as UID 1337 in network namespaces
// made by netnstest, with the capture rules of `metamesh iptables`
// applied, and send traffic only to hosts they made (198.18.0.0/24) or to
// loopback inside those namespaces.

const greeter = "org.example.Greeter"

// sidecarBinary builds metamesh where UID 1337 may run it.
func sidecarBinary(t testing.TB) string {
	t.Helper()
	dir := openTempDir(t)
	bin := filepath.Join(dir, "metamesh")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/metamesh").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// openTempDir is a temporary folder UID 1337 may read (t.TempDir's
// parent is the owner's only).
func openTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// configDir writes files into a folder UID 1337 may read.
func configDir(t testing.TB, yaml string) string {
	t.Helper()
	dir := openTempDir(t)
	if yaml != "" {
		if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sidecar runs `metamesh run` in h as UID 1337, and returns a function
// reading its metrics; it waits for /ready.
func sidecar(t testing.TB, h *netnstest.Host, bin string, args ...string) func() string {
	t.Helper()
	var logs lockedBuffer // written by the process's copier while a failed test reads it
	cmd := exec.Command(bin, append([]string{"run", "--admin", "127.0.0.1:15000", "--log-level", "debug"}, args...)...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	h.Start(t, netnstest.AsUser(cmd, iptables.DefaultProxyUID))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy in %s:\n%s", h.Name, logs.String())
		}
	})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		return h.Dial(network, addr)
	}}}
	get := func(path string) (int, string) {
		resp, err := hc.Get("http://127.0.0.1:15000" + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := get("/ready"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			t.Fatalf("the proxy in %s never got ready:\n%s", h.Name, logs.String())
		}
	}
	return func() string { _, body := get("/metrics"); return body }
}

// lockedBuffer is a bytes.Buffer safe for one writer and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// readDubboReply reads the reply to call id on nc: its status and value
// (or error message).
func readDubboReply(t *testing.T, nc net.Conn, id uint64) (byte, string) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	codec, _ := dubbo.New(nil)
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		var m protocols.Message
		if n, err := codec.Decode(buf, &m); err != nil {
			t.Fatalf("reply %d: %v", id, err)
		} else if n > 0 {
			if m.ID != id {
				t.Fatalf("reply %d, want %d", m.ID, id)
			}
			status, value, _ := dubbo.ParseResponseValue(buf[:n])
			return status, value
		}
		n, err := nc.Read(tmp)
		if n == 0 && err != nil {
			t.Fatalf("reply %d: %v", id, err)
		}
		buf = append(buf, tmp[:n]...)
	}
}

// metric returns the value of one series in a /metrics text ("" labels:
// the series without labels), 0 when absent.
func metric(text, name, labels string) float64 {
	re := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(name+labels) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// provider is a Dubbo server answering every request with its name,
// counting its connections by the client's address.
type provider struct {
	name  string
	mu    sync.Mutex
	peers map[string]int
	calls atomic.Int64
}

func startProvider(t *testing.T, h *netnstest.Host, name string) *provider {
	return startProviderOn(t, h, name, net.JoinHostPort(h.Addr.String(), "20880"))
}

func startProviderOn(t testing.TB, h *netnstest.Host, name, addr string) *provider {
	p := &provider{name: name, peers: map[string]int{}}
	ln := h.Listen(t, "tcp", addr)
	codec, _ := dubbo.New(nil)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.peers[nc.RemoteAddr().(*net.TCPAddr).IP.String()]++
			p.mu.Unlock()
			go func() {
				defer nc.Close()
				w := wire.NewWriter(nc, 0)
				defer w.Close()
				_ = wire.ReadFrames(nc, codec, func(m *protocols.Message) error {
					if m.Kind == protocols.KindHeartbeat {
						return w.Append(func(dst []byte) []byte { return codec.HeartbeatReply(dst, m) })
					}
					p.calls.Add(1)
					id := m.ID
					return w.Append(func(dst []byte) []byte { return dubbo.AppendResponse(dst, id, dubbo.StatusOK, p.name) })
				}, nil)
			}()
		}
	}()
	return p
}

func (p *provider) connections() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.peers {
		out[k] = v
	}
	return out
}

// dubboCall sends one two-way request on nc and returns the reply's value.
func dubboCall(t *testing.T, nc net.Conn, id uint64, attachments ...protocols.Header) string {
	t.Helper()
	value, err := call(nc, id, attachments...)
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// call is dubboCall returning its error, for any goroutine.
func call(nc net.Conn, id uint64, attachments ...protocols.Header) (string, error) {
	if _, err := nc.Write(dubbo.AppendRequest(nil, dubbo.Request{ID: id, TwoWay: true, Service: greeter, Method: "greet", Args: []string{"x"}, Attachments: attachments})); err != nil {
		return "", fmt.Errorf("call %d: %w", id, err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	codec, _ := dubbo.New(nil)
	var buf []byte
	tmp := make([]byte, 4096)
	for {
		var m protocols.Message
		if n, err := codec.Decode(buf, &m); err != nil {
			return "", fmt.Errorf("call %d: %w", id, err)
		} else if n > 0 {
			status, value, err := dubbo.ParseResponseValue(buf[:n])
			if err != nil || status != dubbo.StatusOK || m.ID != id {
				return "", fmt.Errorf("call %d: reply %d status %d %q: %v", id, m.ID, status, value, err)
			}
			return value, nil
		}
		n, err := nc.Read(tmp)
		if n == 0 && err != nil {
			return "", fmt.Errorf("call %d: %w", id, err)
		}
		buf = append(buf, tmp[:n]...)
	}
}

// startEchoServer echoes each connection until the client half-closes it.
func startEchoServer(t testing.TB, h *netnstest.Host, port string) *atomic.Int64 {
	var conns atomic.Int64
	ln := h.Listen(t, "tcp", net.JoinHostPort("0.0.0.0", port))
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				_, _ = io.Copy(nc, nc)
				_ = nc.Close()
			}()
		}
	}()
	return &conns
}

// echo sends line on a connection from h to addr, half-closes it, and
// returns all it read back.
func echo(t *testing.T, h *netnstest.Host, addr, line string) string {
	t.Helper()
	nc, err := h.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	_ = nc.(*net.TCPConn).CloseWrite()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(nc)
	if errors.Is(err, syscall.ECONNRESET) && len(b) == 0 {
		// Closed unread: the kernel resets rather than ends it; either
		// way nothing came back.
		return ""
	}
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return string(b)
}

func needIPTables(t testing.TB) {
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skipf("iptables-restore not found (make mesh-tools installs it): %v", err)
	}
}

func TestOutboundCaptureRoutesDirectDials(t *testing.T) {
	n := netnstest.New(t)
	needIPTables(t)
	consumer, h1, h2, other := n.Host("consumer"), n.Host("v1"), n.Host("v2"), n.Host("plain")
	v1, v2 := startProvider(t, h1, "v1"), startProvider(t, h2, "v2")
	echoConns := startEchoServer(t, other, "7000")
	batch := protocols.Header{Key: "batchjob", Value: "true"}
	dst := net.JoinHostPort(h1.Addr.String(), "20880")

	// Without capture, a batch job sent to v1's address lands on v1: what
	// follows is the capture's doing.
	direct, err := consumer.Dial("tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	if got := dubboCall(t, direct, 1, batch); got != "v1" {
		t.Fatalf("without capture, a call to v1's address answered by %q", got)
	}
	_ = direct.Close()

	bin := sidecarBinary(t)
	cfg := configDir(t, fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [%[1]s]
  ports:
  - {number: 20880, name: dubbo, protocol: dubbo}
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
  - name: default
    route: [{destination: {host: %[1]s, subset: v1}}]
`, greeter, h1.Addr, h2.Addr))
	if err := consumer.Do(func() error {
		_, err := iptables.Apply(context.Background(), iptables.DefaultConfig(), iptables.Options{})
		return err
	}); err != nil {
		t.Fatalf("iptables in consumer: %v", err)
	}
	metrics := sidecar(t, consumer, bin, "--config", cfg, "--capture-outbound", "127.0.0.1:15001")

	// An unmodified client dialing v1's address directly, routed.
	nc, err := consumer.Dial("tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for id := uint64(10); id < 15; id++ {
		if got := dubboCall(t, nc, id, batch); got != "v2" {
			t.Fatalf("batch call %d to v1's address answered by %q, want v2 (the MetaRouter's route)", id, got)
		}
		if got := dubboCall(t, nc, id+100); got != "v1" {
			t.Fatalf("call %d answered by %q, want v1", id+100, got)
		}
	}
	// A plain TCP service through the same capture: passed through, half-close included.
	if got := echo(t, consumer, net.JoinHostPort(other.Addr.String(), "7000"), "hello through capture\n"); got != "hello through capture\n" {
		t.Fatalf("echo through capture: %q", got)
	}
	// Dialed without a redirect, the capture port itself refuses: relaying
	// it would dial the proxy again.
	if got := echo(t, consumer, "127.0.0.1:15001", "loop?\n"); got != "" {
		t.Fatalf("the capture port dialed directly answered %q", got)
	}

	m := metrics()
	// Had the proxy's own dials to v1, v2 and the echo server been
	// captured, they would be counted here too (and loop).
	for _, c := range []struct {
		outcome string
		want    float64
	}{{"served", 1}, {"passthrough", 1}, {"refused", 1}} {
		if got := metric(m, "metamesh_capture_outbound_connections_total", `{outcome="`+c.outcome+`"}`); got != c.want {
			t.Errorf("captured connections %s: %v, want %v", c.outcome, got, c.want)
		}
	}
	if got := metric(m, "metamesh_passthrough_connections_total", `{result="ok"}`); got != 1 {
		t.Errorf("passthrough connections: %v, want 1", got)
	}
	if up, down := metric(m, "metamesh_passthrough_bytes_total", `{direction="upstream"}`), metric(m, "metamesh_passthrough_bytes_total", `{direction="downstream"}`); up != 22 || down != 22 {
		t.Errorf("passthrough bytes up %v, down %v: want 22 each", up, down)
	}
	if got := metric(m, "metamesh_requests_total", `{cluster="outbound|20880|v2|`+greeter+`",protocol="dubbo",route="batch",service="`+greeter+`",status="ok"}`); got != 5 {
		t.Errorf("requests routed to v2 by the batch route: %v, want 5", got)
	}
	// The providers saw the consumer's address only: the proxy's
	// connections (and the direct one before capture), no other.
	if c := v2.connections(); len(c) != 1 || c[consumer.Addr.String()] == 0 {
		t.Errorf("v2's connections by peer: %v", c)
	}
	if v2.calls.Load() != 5 || v1.calls.Load() != 6 {
		t.Errorf("calls v1 %d (want 6: 1 direct, 5 routed), v2 %d (want 5)", v1.calls.Load(), v2.calls.Load())
	}
	if echoConns.Load() != 1 {
		t.Errorf("echo server connections: %d, want 1", echoConns.Load())
	}
}

func TestInboundCaptureForwardsToTheApplication(t *testing.T) {
	n := netnstest.New(t)
	needIPTables(t)
	client, pod := n.Host("client"), n.Host("pod")
	// The applications listen on every address; what the proxy forwards
	// reaches them from 127.0.0.1. Port 9000 is plain TCP, 20880 the
	// greeter service's Dubbo port.
	ln := pod.Listen(t, "tcp", "0.0.0.0:9000")
	peers := make(chan string, 4)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- nc.RemoteAddr().(*net.TCPAddr).IP.String()
			go func() { _, _ = io.Copy(nc, bufio.NewReader(nc)); _ = nc.Close() }()
		}
	}()
	app := startProviderOn(t, pod, "app", "0.0.0.0:20880")
	cfg := iptables.DefaultConfig()
	cfg.CaptureInbound = true
	if err := pod.Do(func() error { _, err := iptables.Apply(context.Background(), cfg, iptables.Options{}); return err }); err != nil {
		t.Fatalf("iptables in pod: %v", err)
	}
	// The pod's address is an endpoint of greeter: its port 20880 is
	// served through the Dubbo codec. The listeners are not bound (the
	// application holds 0.0.0.0:20880).
	mesh := configDir(t, fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [%s]
  ports:
  - {number: 20880, name: dubbo, protocol: dubbo}
  endpoints:
  - {address: %s}
---
apiVersion: metamesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: no-forbidden, namespace: default}
spec:
  hosts: [%[1]s]
  action: DENY
  rules:
  - from: [{ipBlocks: [%[3]s/32]}]
    to: [{methods: [forbidden]}]
`, greeter, pod.Addr, client.Addr))
	// The access log, in a file the proxy (UID 1337) may write.
	accessLog := filepath.Join(openTempDir(t), "access.log")
	if err := os.WriteFile(accessLog, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(accessLog, 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	metrics := sidecar(t, pod, sidecarBinary(t), "--config", mesh, "--capture-inbound", "0.0.0.0:15006", "--access-log", "all", "--access-log-path", accessLog)

	if got := echo(t, client, net.JoinHostPort(pod.Addr.String(), "9000"), "inbound\n"); got != "inbound\n" {
		t.Fatalf("echo through inbound capture: %q", got)
	}
	if peer := <-peers; peer != "127.0.0.1" {
		t.Fatalf("the application's client is %s, want 127.0.0.1 (the proxy): not captured", peer)
	}
	nc, err := client.Dial("tcp", net.JoinHostPort(pod.Addr.String(), "20880"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for id := uint64(1); id <= 5; id++ {
		if got := dubboCall(t, nc, id); got != "app" {
			t.Fatalf("call %d answered by %q", id, got)
		}
	}
	// The service's authorization policies apply to inbound requests,
	// with the client's own address (the capture keeps it), also to a
	// request naming another interface (the port is greeter's alone, so
	// its requests are greeter's whatever they name).
	for _, c := range []struct {
		id              uint64
		service, method string
		want            string
	}{
		{6, greeter, "forbidden", "denied by authorization policy default/no-forbidden"},
		{7, "org.example.Unknown", "forbidden", "denied by authorization policy default/no-forbidden"},
	} {
		if _, err := nc.Write(dubbo.AppendRequest(nil, dubbo.Request{ID: c.id, TwoWay: true, Service: c.service, Method: c.method, Args: []string{"x"}})); err != nil {
			t.Fatal(err)
		}
		if status, text := readDubboReply(t, nc, c.id); status == dubbo.StatusOK || !strings.Contains(text, c.want) {
			t.Fatalf("%s.%s answered with status %d %q, want %q", c.service, c.method, status, text, c.want)
		}
	}
	if c := app.connections(); len(c) != 1 || c["127.0.0.1"] == 0 {
		t.Errorf("the Dubbo application's connections by peer: %v, want 127.0.0.1's only (the proxy's pool)", c)
	}

	m := metrics()
	for _, c := range []struct {
		name, labels string
		want         float64
	}{
		{"metamesh_inbound_connections_total", `{protocol="tcp",result="forwarded"}`, 1},
		{"metamesh_inbound_bytes_total", `{direction="upstream",protocol="tcp"}`, float64(len("inbound\n"))},
		{"metamesh_inbound_connections_total", `{protocol="dubbo",result="served"}`, 1},
		// Each request, counted by the server-side proxy under the
		// inbound names.
		{"metamesh_requests_total", `{cluster="inbound|20880||",protocol="dubbo",route="inbound",service="` + greeter + `",status="ok"}`, 5},
		{"metamesh_downstream_cx_total", `{listener="inbound|20880|dubbo-20880"}`, 1},
		{"metamesh_requests_total", `{cluster="",protocol="dubbo",route="",service="` + greeter + `",status="denied"}`, 1},
		{"metamesh_requests_denied_total", `{policy="default/no-forbidden"}`, 2},
	} {
		if got := metric(m, c.name, c.labels); got != c.want {
			t.Errorf("%s%s = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// One access log line per call, under the inbound names; lines are
	// written in the background.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		lines := inboundLogLines(t, accessLog)
		if lines == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d access log lines with listener inbound|20880|dubbo-20880 and cluster inbound|20880||, want 5", lines)
		}
	}
}

// inboundLogLines counts the JSON access log lines of path on the
// inbound listener and cluster of port 20880.
func inboundLogLines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e struct{ Listener, Cluster string }
		if json.Unmarshal([]byte(line), &e) == nil && e.Listener == "inbound|20880|dubbo-20880" && e.Cluster == "inbound|20880||" {
			n++
		}
	}
	return n
}
