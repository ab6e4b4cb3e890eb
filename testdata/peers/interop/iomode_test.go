package interop

import (
	"os"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// newProxy returns an in-process proxy in the I/O mode METAMESH_IO_MODE
// names (goroutine when unset; docs/proxy-config.md, "I/O mode"), so the
// suite runs under either: make interop-epoll runs the Redis tests under
// epoll.
func newProxy(t testing.TB, m *metrics.Proxy) *proxy.Server {
	t.Helper()
	srv := proxy.New(zaptest.NewLogger(t), m)
	if err := srv.SetIOMode(proxy.IOMode(os.Getenv("METAMESH_IO_MODE"))); err != nil {
		t.Fatal(err)
	}
	return srv
}
