package harness

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RegistryServer is a real ZooKeeper or etcd server for one test, on a
// free 127.0.0.1 port with a temporary data folder. Stop and Start keep
// the port and the data, as a restart does: while stopped, its ports are
// held (reserve.go), so no other process takes them meanwhile.
type RegistryServer struct {
	// Addr is the client address, 127.0.0.1:PORT.
	Addr string
	// Kind is "zookeeper" or "etcd": the scheme of its registry URL.
	Kind string

	args  []string
	ports []int // the ports it listens on, held while it is stopped
	held  []int // the sockets holding them (reserve.go)
	dir   string
	out   *SyncBuffer
	cmd   *exec.Cmd
	done  chan struct{}
	// ready reports whether the server at addr serves clients (nil: it
	// accepts connections).
	ready func(addr string) bool
}

// zooKeeperJar is Debian's zookeeper package's server jar.
const zooKeeperJar = "/usr/share/java/zookeeper.jar"

// StartZooKeeper starts Debian's ZooKeeper (installed by `make
// zookeeper-tools`) as a standalone server, skipping the test with the
// reason when it is not installed. Sessions are short
// (maxSessionTimeout 4 s), so a killed provider's node goes within
// seconds.
func StartZooKeeper(t testing.TB) *RegistryServer {
	t.Helper()
	java, err := exec.LookPath("java")
	if _, serr := os.Stat(zooKeeperJar); err != nil || serr != nil {
		t.Skipf("ZooKeeper not installed (java: %v, %s: %v); `make zookeeper-tools` installs it", err, zooKeeperJar, serr)
	}
	dir := t.TempDir()
	port := FreePort(t)
	cfg := fmt.Sprintf("tickTime=500\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxSessionTimeout=4000\n4lw.commands.whitelist=srvr\n",
		filepath.Join(dir, "data"), port)
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &RegistryServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Kind: "zookeeper", dir: dir, out: &SyncBuffer{}, ports: []int{port},
		args: []string{java, "-Xmx256m", "-cp", "/etc/zookeeper/conf:" + zooKeeperJar,
			"org.apache.zookeeper.server.ZooKeeperServerMain", filepath.Join(dir, "zoo.cfg")}}
	s.ready = zooKeeperServing
	s.run(t)
	return s
}

// StartEtcd starts Debian's etcd (etcd-server) as a one-member cluster,
// skipping the test with the reason when it is not installed.
func StartEtcd(t testing.TB) *RegistryServer {
	t.Helper()
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Skipf("etcd not installed (%v); Debian's etcd-server package has it", err)
	}
	dir := t.TempDir()
	client, peer := FreeAddr(t), FreeAddr(t)
	s := &RegistryServer{Addr: client, Kind: "etcd", dir: dir, out: &SyncBuffer{}, ports: []int{portOf(t, client), portOf(t, peer)},
		args: []string{etcd, "--name", "registry", "--data-dir", filepath.Join(dir, "data"),
			"--listen-client-urls", "http://" + client, "--advertise-client-urls", "http://" + client,
			"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
			"--initial-cluster", "registry=http://" + peer, "--log-level", "warn"}}
	s.run(t)
	return s
}

func (s *RegistryServer) run(t testing.TB) {
	t.Helper()
	s.Start(t)
	t.Cleanup(func() {
		s.Stop()
		s.release()
		if t.Failed() {
			t.Logf("%s server output (tail):\n%s", s.Kind, tail(s.out.String(), 4000))
		}
	})
}

// Start starts the server (again) and waits until it serves.
func (s *RegistryServer) Start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// Killed with the test binary, should it die before its cleanups.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("harness: start %s: %v", s.Kind, err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if s.serving() {
			s.release() // the server has its ports now
			return
		}
		select {
		case <-s.done:
			t.Fatalf("harness: %s exited before serving:\n%s", s.Kind, tail(s.out.String(), 4000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatalf("harness: %s not serving on %s after 60s", s.Kind, s.Addr)
		}
	}
}

// Stop kills the server and waits for it to exit; safe to call twice.
func (s *RegistryServer) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	s.reserve()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// serving reports whether the server takes clients: its own readiness
// check, else that it accepts connections.
func (s *RegistryServer) serving() bool {
	if s.ready != nil {
		return s.ready(s.Addr)
	}
	c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// zooKeeperServing asks ZooKeeper's srvr command whether it serves: it
// accepts connections before it does, and a client that connects then has
// its session refused.
func zooKeeperServing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("srvr")); err != nil {
		return false
	}
	out, _ := io.ReadAll(c)
	return strings.Contains(string(out), "Mode: ")
}
