package cli

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/wire"
)

// ioModeFlag chooses how the proxy reads its connections, and on how
// many event loops (docs/proxy-config.md, "I/O mode"), shared by run and
// proxy.
type ioModeFlag struct {
	mode    string
	loops   int
	ioUring bool
}

func (f *ioModeFlag) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.mode, "io-mode", string(proxy.DefaultIOMode()), "how connections are read: epoll (event loops, --event-loops of them, for plaintext Redis, Dubbo and Thrift connections; Linux only, the default there) or goroutine (one per connection)")
	fs.IntVar(&f.loops, "event-loops", 0, "with --io-mode epoll, how many event loops read connections (0: half of GOMAXPROCS, at least one)")
	fs.BoolVar(&f.ioUring, "io-uring", true, "with --io-mode epoll, an event loop reads the sockets a poll found readable, and sends a turn's writes, in one io_uring_enter each when there are two or more, where the kernel allows (else, or when false, one read(2) or write(2) per socket)")
}

func (f *ioModeFlag) apply(srv *proxy.Server) error {
	switch {
	case f.loops < 0:
		return fmt.Errorf("--event-loops %d: must be 0 (half of GOMAXPROCS) or more", f.loops)
	case f.loops > 0 && proxy.IOMode(f.mode) != proxy.IOEpoll:
		return fmt.Errorf("--event-loops %d: only with --io-mode epoll (the I/O mode is %s)", f.loops, f.mode)
	}
	return srv.SetIOMode(proxy.IOMode(f.mode), wire.LoopOptions{Count: f.loops, NoIORing: !f.ioUring})
}
