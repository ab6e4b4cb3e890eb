package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

var (
	rlsOnce sync.Once
	rlsBin  string
	rlsErr  error
)

// BuildRateLimitServer builds Envoy's own rate-limit service
// (github.com/envoyproxy/ratelimit, the testdata/ratelimit-server module
// of the main repository) once per test process, into the folder
// CleanupBuilds removes, and returns the binary's path.
func BuildRateLimitServer(t testing.TB) string {
	t.Helper()
	rlsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "metamesh-ratelimit-")
		if err != nil {
			rlsErr = err
			return
		}
		rlsBuildDir = dir
		rlsBin = filepath.Join(dir, "ratelimit-server")
		_, self, _, _ := runtime.Caller(0)
		build := exec.Command("go", "build", "-o", rlsBin, ".")
		build.Dir = filepath.Join(filepath.Dir(self), "..", "..", "ratelimit-server")
		if out, err := build.CombinedOutput(); err != nil {
			rlsErr = fmt.Errorf("go build ratelimit-server: %v\n%s", err, out)
		}
	})
	if rlsErr != nil {
		t.Fatal(rlsErr)
	}
	return rlsBin
}

var rlsBuildDir string

func cleanupRateLimitServer() {
	if rlsBuildDir != "" {
		_ = os.RemoveAll(rlsBuildDir)
	}
}

// RateLimitServer is a running Envoy rate-limit service.
type RateLimitServer struct {
	// Addr is its gRPC address.
	Addr string
	*Process
}

// StartRateLimitServer runs Envoy's rate-limit service on a free port of
// 127.0.0.1 until the test ends, counting in the redis-server at
// redisAddr, with config (its YAML config file: domain, descriptors) as
// its only config. It returns once the service answers.
func StartRateLimitServer(t testing.TB, redisAddr, config string) *RateLimitServer {
	t.Helper()
	bin := BuildRateLimitServer(t)
	root := t.TempDir()
	dir := filepath.Join(root, "ratelimit", "config")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	grpcPort := FreePort(t)
	s := &RateLimitServer{Addr: "127.0.0.1:" + strconv.Itoa(grpcPort)}
	p := &Process{Name: "ratelimit-server", cmd: exec.Command(bin), out: &SyncBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr, p.cmd.Stdout = p.out, p.out
	p.cmd.Env = append(os.Environ(),
		"HOST=127.0.0.1", "PORT="+strconv.Itoa(FreePort(t)),
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT="+strconv.Itoa(FreePort(t)),
		"GRPC_HOST=127.0.0.1", "GRPC_PORT="+strconv.Itoa(grpcPort),
		"USE_STATSD=false", "LOG_LEVEL=warn",
		"BACKEND_TYPE=redis", "REDIS_SOCKET_TYPE=tcp", "REDIS_URL="+redisAddr,
		"RUNTIME_ROOT="+root, "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_APPDIRECTORY=config",
		"RUNTIME_WATCH_ROOT=false", "RUNTIME_IGNOREDOTFILES=true")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	s.Process = p
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("ratelimit-server output:\n%s", p.out.String())
		}
	})
	s.waitUp(t)
	return s
}

// waitUp calls the service with a descriptor no rule names (counted
// nowhere) until it answers OK.
func (s *RateLimitServer) waitUp(t testing.TB) {
	t.Helper()
	conn, err := grpc.NewClient(s.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := rlsv3.NewRateLimitServiceClient(conn)
	req := &rlsv3.RateLimitRequest{Domain: "metamesh-harness", Descriptors: []*ratelimitv3.RateLimitDescriptor{
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "harness", Value: "up"}}}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		resp, err := c.ShouldRateLimit(ctx, req)
		cancel()
		if err == nil && resp.GetOverallCode() == rlsv3.RateLimitResponse_OK {
			return
		}
		select {
		case <-s.Done():
			t.Fatalf("ratelimit-server exited:\n%s", s.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ratelimit-server at %s not answering after 30s: %v\n%s", s.Addr, err, s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
