package interop

import (
	"os"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/wire"
)

// newProxy returns an in-process proxy in the I/O mode METAMESH_IO_MODE
// names (the binary's default when unset: epoll on Linux;
// docs/proxy-config.md, "I/O mode"), so the suite runs under either: make
// interop-goroutine runs the Redis tests under goroutine.
func newProxy(t testing.TB, m *metrics.Proxy) *proxy.Server {
	t.Helper()
	srv := proxy.New(zaptest.NewLogger(t), m)
	mode := proxy.IOMode(os.Getenv("METAMESH_IO_MODE"))
	if mode == "" {
		mode = proxy.DefaultIOMode()
	}
	if err := srv.SetIOMode(mode, wire.LoopOptions{}); err != nil {
		t.Fatal(err)
	}
	return srv
}
