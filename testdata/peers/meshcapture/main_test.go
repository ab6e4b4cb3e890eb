// Package meshcapture runs real clients (apache/thrift, go-redis) in a
// consumer network namespace whose outbound TCP is captured by `metamesh
// iptables` rules and served by `metamesh run --capture-outbound` running
// as UID 1337: the clients dial provider addresses directly and the
// proxy's MetaRouters decide where their requests go. Hosts are made by
// proxy/capture/netnstest (198.18.0.0/24, root only); no traffic leaves them.
package meshcapture

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/metamesh/metamesh/proxy/capture/iptables"
	"github.com/metamesh/metamesh/proxy/capture/netnstest"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.CleanupBuilds()
	os.Exit(code)
}

// openTempDir is a temporary folder UID 1337 may read (t.TempDir's
// parent is the owner's only).
func openTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sidecarBinary copies harness.BuildMetamesh's binary where UID 1337 may
// run it (its build folder is the owner's only).
func sidecarBinary(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(harness.BuildMetamesh(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(openTempDir(t), "metamesh")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// newNet makes t's hosts, or skips t without root or iptables.
func newNet(t *testing.T) *netnstest.Net {
	t.Helper()
	n := netnstest.New(t)
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skipf("iptables-restore not found (make mesh-tools installs it): %v", err)
	}
	return n
}

// applyRules applies the outbound capture rules in h, leaving exclude's
// ports uncaptured; applying again replaces them.
func applyRules(t *testing.T, h *netnstest.Host, exclude ...uint16) {
	t.Helper()
	cfg := iptables.DefaultConfig()
	cfg.ExcludeOutboundPorts = exclude
	apply(t, h, cfg)
}

// applyInboundRules applies the outbound and inbound capture rules in h.
func applyInboundRules(t *testing.T, h *netnstest.Host) {
	t.Helper()
	cfg := iptables.DefaultConfig()
	cfg.CaptureInbound = true
	apply(t, h, cfg)
}

func apply(t *testing.T, h *netnstest.Host, cfg iptables.Config) {
	t.Helper()
	if err := h.Do(func() error {
		_, err := iptables.Apply(context.Background(), cfg, iptables.Options{})
		return err
	}); err != nil {
		t.Fatalf("iptables in %s: %v", h.Name, err)
	}
}

// sidecar is `metamesh run --capture-outbound 127.0.0.1:15001` (and the
// flags given to startSidecar) running as UID 1337 in a host, with a
// mesh.yaml.
type sidecar struct {
	t    *testing.T
	h    *netnstest.Host
	args []string
	logs *harness.SyncBuffer
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

func startSidecar(t *testing.T, h *netnstest.Host, meshYAML string, flags ...string) *sidecar {
	t.Helper()
	dir := openTempDir(t)
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(meshYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &sidecar{t: t, h: h, logs: &harness.SyncBuffer{},
		args: []string{"run", "--admin", "127.0.0.1:15000", "--config", dir, "--capture-outbound", "127.0.0.1:15001"}}
	s.args = append(s.args, flags...)
	bin := sidecarBinary(t)
	s.args = append([]string{bin}, s.args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("proxy in %s:\n%s", h.Name, s.logs.String())
		}
	})
	s.start()
	return s
}

// start runs the proxy and waits for /ready.
func (s *sidecar) start() {
	s.t.Helper()
	var cmd *exec.Cmd
	for tries := 1; ; tries++ {
		cmd = exec.Command(s.args[0], s.args[1:]...)
		cmd.Stdout, cmd.Stderr = s.logs, s.logs
		err := s.h.Do(netnstest.AsUser(cmd, iptables.DefaultProxyUID).Start)
		if err == nil {
			break
		}
		// The binary was just written: a process another test forked
		// meanwhile may still hold its file open until it execs.
		if !errors.Is(err, syscall.ETXTBSY) || tries == 50 {
			s.t.Fatalf("start the proxy in %s: %v", s.h.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	s.t.Cleanup(s.kill)
	hc := s.admin()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := hc.Get("http://127.0.0.1:15000/ready"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			s.t.Fatalf("the proxy in %s exited before it was ready:\n%s", s.h.Name, s.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the proxy in %s was not ready in 30s:\n%s", s.h.Name, s.logs.String())
		}
	}
}

// admin is a client of the proxy's admin address, 127.0.0.1:15000 in its
// host.
func (s *sidecar) admin() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
		return s.h.Dial(network, addr)
	}}}
}

// metric returns the value of one series of the proxy's /metrics (labels
// as the proxy writes them, sorted by name), 0 when absent.
func (s *sidecar) metric(name, labels string) float64 {
	s.t.Helper()
	resp, err := s.admin().Get("http://127.0.0.1:15000/metrics")
	if err != nil {
		s.t.Fatalf("metrics of the proxy in %s: %v", s.h.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("metrics of the proxy in %s: %v", s.h.Name, err)
	}
	m := regexp.MustCompile("(?m)^" + regexp.QuoteMeta(name+labels) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// kill sends SIGKILL (the proxy dies without closing anything itself)
// and waits for it to exit; it is safe to call more than once.
func (s *sidecar) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}
