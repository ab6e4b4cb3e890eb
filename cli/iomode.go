package cli

import (
	"github.com/spf13/pflag"

	"github.com/metamesh/metamesh/proxy"
)

// ioModeFlag chooses how the proxy reads its connections
// (docs/proxy-config.md, "I/O mode"), shared by run and proxy.
type ioModeFlag struct{ mode string }

func (f *ioModeFlag) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.mode, "io-mode", string(proxy.DefaultIOMode()), "how connections are read: epoll (event loops, one per GOMAXPROCS, for plaintext Redis, Dubbo and Thrift connections; Linux only, the default there) or goroutine (one per connection)")
}

func (f *ioModeFlag) apply(srv *proxy.Server) error { return srv.SetIOMode(proxy.IOMode(f.mode)) }
