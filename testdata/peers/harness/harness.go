// Package harness builds and runs the real peers of this module as
// subprocesses for tests: the dubbo-go greeter-server (cmd/greeter-server),
// and the registries providers register in (ZooKeeper, etcd).
package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/internal/peerbuild"
)

// GreeterPackage is the import path of the greeter-server command.
const GreeterPackage = peerbuild.ModulePath + "/cmd/greeter-server"

// BuildGreeter builds cmd/greeter-server once per test binary (without
// -race) into a temporary directory shared by the process and returns the
// binary's path. Call CleanupBuilds from TestMain to remove the directory
// afterwards.
func BuildGreeter(t testing.TB) string {
	t.Helper()
	p, err := peerbuild.Build(GreeterPackage)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return p
}

// CleanupBuilds removes the binaries built for this process (the greeter's,
// dubboclient's helper and metamesh). Call it from TestMain after m.Run.
func CleanupBuilds() {
	peerbuild.Cleanup()
	cleanupMetamesh()
	cleanupRateLimitServer()
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call in this process returned: the kernel often hands
// out the port it just freed again, so two calls in a row could otherwise
// return the same port.
func FreePort(t testing.TB) int {
	t.Helper()
	var held []net.Listener // candidates stay bound until one is new
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("harness: FreePort: %v", err)
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		if _, taken := handedOut.LoadOrStore(port, true); !taken {
			return port
		}
	}
	t.Fatal("harness: FreePort: no port that was not handed out already")
	return 0
}

// handedOut holds the ports FreePort returned.
var handedOut sync.Map

// FreeAddr returns "127.0.0.1:<FreePort>".
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}

// GreeterOptions configure StartGreeterWith. Zero fields mean the
// greeter-server's defaults.
type GreeterOptions struct {
	Version         string        // --version label, default "v1"
	Interface       string        // --interface
	Addr            string        // --addr; "" picks a free 127.0.0.1 port
	LogLevel        string        // --log-level
	HeartbeatPeriod time.Duration // --heartbeat-period (server-initiated heartbeats)
	MaxMsgLen       int           // --max-msg-len
	ReadyTimeout    time.Duration // default 30s
	Registry        string        // --registry: zookeeper://HOST:PORT or etcd://HOST:PORT
	RegistryType    string        // --registry-type: interface (default), service or all
	ServiceVersion  string        // --service-version: the Dubbo service version exported
	Params          []string      // --param K=V of the registered provider URL
}

// Greeter is a running greeter-server subprocess.
type Greeter struct {
	Addr    string
	Version string

	cmd  *exec.Cmd
	out  *SyncBuffer
	done chan struct{}
	err  error
}

// StartGreeter starts a greeter-server labelled version on a free
// 127.0.0.1 port, waits for its "ready" line and registers t.Cleanup to
// kill it.
func StartGreeter(t testing.TB, version string) *Greeter {
	t.Helper()
	return StartGreeterWith(t, GreeterOptions{Version: version})
}

// StartGreeterWith is StartGreeter with options.
func StartGreeterWith(t testing.TB, o GreeterOptions) *Greeter {
	t.Helper()
	bin := BuildGreeter(t)
	if o.Version == "" {
		o.Version = "v1"
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken before we bind it
		addr := o.Addr
		if addr == "" {
			addr = FreeAddr(t)
		}
		g, err := startGreeter(bin, addr, o)
		if err == nil {
			t.Cleanup(func() {
				g.Kill()
				if t.Failed() {
					t.Logf("greeter-server %s (%s) output:\n%s", g.Version, g.Addr, g.Output())
				}
			})
			return g
		}
		lastErr = err
		if o.Addr != "" {
			break
		}
	}
	t.Fatalf("harness: StartGreeter: %v", lastErr)
	return nil
}

func startGreeter(bin, addr string, o GreeterOptions) (*Greeter, error) {
	args := []string{"--addr", addr, "--version", o.Version}
	if o.Interface != "" {
		args = append(args, "--interface", o.Interface)
	}
	if o.LogLevel != "" {
		args = append(args, "--log-level", o.LogLevel)
	}
	if o.HeartbeatPeriod > 0 {
		args = append(args, "--heartbeat-period", o.HeartbeatPeriod.String())
	}
	if o.MaxMsgLen > 0 {
		args = append(args, "--max-msg-len", strconv.Itoa(o.MaxMsgLen))
	}
	if o.Registry != "" {
		args = append(args, "--registry", o.Registry)
	}
	if o.RegistryType != "" {
		args = append(args, "--registry-type", o.RegistryType)
	}
	if o.ServiceVersion != "" {
		args = append(args, "--service-version", o.ServiceVersion)
	}
	for _, kv := range o.Params {
		args = append(args, "--param", kv)
	}
	g := &Greeter{Addr: addr, Version: o.Version, out: &SyncBuffer{}, done: make(chan struct{})}
	g.cmd = exec.Command(bin, args...)
	g.cmd.Stderr = g.out
	stdout, err := g.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			g.out.Write([]byte(line + "\n"))
			if !signalled && strings.HasPrefix(line, "ready ") {
				signalled = true
				close(ready)
			}
		}
		g.err = g.cmd.Wait()
		close(g.done)
	}()
	select {
	case <-ready:
		return g, nil
	case <-g.done:
		return nil, fmt.Errorf("greeter-server %s exited before ready (%v):\n%s", addr, g.err, g.Output())
	case <-time.After(o.ReadyTimeout):
		g.Kill()
		return nil, fmt.Errorf("greeter-server %s not ready after %s:\n%s", addr, o.ReadyTimeout, g.Output())
	}
}

// Kill sends SIGKILL (an upstream dying mid-run) and waits for the process
// to exit. It is safe to call more than once.
func (g *Greeter) Kill() {
	g.signal(syscall.SIGKILL)
	<-g.done
}

// Stop sends SIGTERM and waits up to 5s for a clean exit, then kills.
func (g *Greeter) Stop() {
	g.signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(5 * time.Second):
		g.Kill()
	}
}

// Done is closed when the process has exited.
func (g *Greeter) Done() <-chan struct{} { return g.done }

// Output returns what the process printed so far (stdout and stderr).
func (g *Greeter) Output() string { return g.out.String() }

func (g *Greeter) signal(sig syscall.Signal) {
	select {
	case <-g.done:
		return
	default:
	}
	_ = g.cmd.Process.Signal(sig)
}

// SyncBuffer is a bytes.Buffer safe for a process writing its output while
// a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
