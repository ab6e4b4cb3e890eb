// Package redispeer runs real redis-server processes for metamesh's
// interop tests, on free loopback ports, with no persistence.
package redispeer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process.
type Server struct {
	Addr string
	t    testing.TB
	cmd  *exec.Cmd
	args []string    // extra redis-server arguments
	tls  *tls.Config // its clients' TLS, for a server that speaks only TLS
	// Client talks to the server directly, bypassing any proxy.
	Client *redis.Client
}

// Start runs a redis-server on a free 127.0.0.1 port until the test ends.
// Without redis-server on PATH the test is skipped, saying so (make test
// installs it).
func Start(t testing.TB) *Server { return StartWith(t) }

// StartWith is Start with extra redis-server arguments (e.g.
// "--requirepass", "secret"; the direct Client then has no password).
func StartWith(t testing.TB, args ...string) *Server {
	t.Helper()
	return startAt(t, freeAddr(t), args...)
}

// startAt is StartWith on addr.
func startAt(t testing.TB, addr string, args ...string) *Server {
	t.Helper()
	s := &Server{Addr: addr, t: t, args: args}
	s.start()
	s.Client = redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() {
		_ = s.Client.Close()
		s.Stop()
	})
	return s
}

// StartTLS runs a redis-server that speaks only TLS, with the test
// certificates in dir (ca.pem, server.pem, server-key.pem: the repository's
// testdata/tls), requiring clients to present a certificate from that CA.
// Client connects with client.pem.
func StartTLS(t testing.TB, dir string) *Server {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	file := func(name string) string { return filepath.Join(dir, name) }
	s := &Server{Addr: addr, t: t, tls: ClientTLS(t, dir), args: []string{"--port", "0", "--tls-port", port,
		"--tls-cert-file", file("server.pem"), "--tls-key-file", file("server-key.pem"),
		"--tls-ca-cert-file", file("ca.pem"), "--tls-auth-clients", "yes"}}
	s.start()
	s.Client = redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, TLSConfig: s.tls})
	t.Cleanup(func() {
		_ = s.Client.Close()
		s.Stop()
	})
	return s
}

// ClientTLS is the TLS of a client of the test certificates in dir: it
// trusts ca.pem, presents client.pem and expects the server to be
// cache.redis.
func ClientTLS(t testing.TB, dir string) *tls.Config {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("%s/ca.pem holds no certificate", dir)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "cache.redis", MinVersion: tls.VersionTLS12}
}

// freeAddr returns a free 127.0.0.1 address for a redis-server, skipping
// the test, saying so, when there is no redis-server (make test installs
// it).
func freeAddr(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (make test installs Debian's redis-server): ", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *Server) start() {
	s.t.Helper()
	args := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning"}
	if s.tls == nil {
		_, port, _ := net.SplitHostPort(s.Addr)
		args = append(args, "--port", port)
	}
	s.cmd = exec.Command("redis-server", append(args, s.args...)...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond)
		if err == nil && s.tls != nil {
			nc = tls.Client(nc, s.tls)
		}
		if err == nil {
			_, _ = nc.Write([]byte("PING\r\n"))
			buf := make([]byte, 64)
			_ = nc.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := nc.Read(buf)
			nc.Close()
			// +PONG, or -NOAUTH from a server with a password: it is up.
			if n > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on %s did not start: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (its data is gone).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Get reads key on the server directly ("" and false when absent).
func (s *Server) Get(key string) (string, bool) {
	v, err := s.Client.Get(context.Background(), key).Result()
	if err == redis.Nil {
		return "", false
	}
	if err != nil {
		s.t.Fatalf("GET %s on %s: %v", key, s.Addr, err)
	}
	return v, true
}

// Port is the server's port, as text.
func (s *Server) Port() string {
	_, p, _ := net.SplitHostPort(s.Addr)
	return p
}

// PortNum is the server's port.
func (s *Server) PortNum() int {
	n, _ := strconv.Atoi(s.Port())
	return n
}

// String names the server.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }
