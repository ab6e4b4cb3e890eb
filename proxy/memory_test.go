package proxy

import (
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestIdleConnectionMemory measures what an idle client connection costs
// the process (heap and goroutine stacks, both ends of the connection
// included) with 5,000 of them open, and holds it to 16 KiB.
func TestIdleConnectionMemory(t *testing.T) {
	const conns, budget = 5000, 16 << 10
	raiseFileLimit(t, 2*conns+2000)
	up := startEcho(t, "v1")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}})
	if status, _ := dial(t, addr).call(1, svc, "m"); status != 20 {
		t.Fatalf("warm-up call: status %d", status)
	}
	active := func() float64 { return testutil.ToFloat64(srv.Metrics().DownstreamCx.WithLabelValues("dubbo")) }
	before := inUse()
	clients := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for range conns {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", len(clients)+1, err)
		}
		clients = append(clients, nc)
	}
	waitUntil(t, 30*time.Second, "every connection served", func() bool { return active() == conns+1 })
	after := inUse()
	per := float64(after-before) / conns
	t.Logf("%d idle connections: %.1f KiB each (heap+stacks %d → %d KiB)", conns, per/1024, before>>10, after>>10)
	if per > budget {
		t.Fatalf("an idle connection costs %.1f KiB, want ≤ %d KiB", per/1024, budget>>10)
	}
}

// inUse returns the heap and stack bytes in use after a collection.
func inUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// raiseFileLimit raises the open-file limit to n or skips the test.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("skipping: reading the open-file limit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Skipf("skipping: %d connections need an open-file limit of %d, the hard limit is %d", n/2, n, lim.Max)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("skipping: raising the open-file limit to %d: %v", n, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}
