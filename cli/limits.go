package cli

import (
	"errors"

	"github.com/spf13/pflag"

	"github.com/metamesh/metamesh/proxy"
)

// limitFlags are the bounds on client connections (docs/config.md,
// "Client connection limits"), shared by run and proxy.
type limitFlags struct{ proxy.Limits }

func (f *limitFlags) register(fs *pflag.FlagSet) {
	d := proxy.DefaultLimits()
	fs.IntVar(&f.MaxConnections, "max-connections", d.MaxConnections, "client connections each listener keeps open; one more is closed at once (0: no limit)")
	fs.IntVar(&f.MaxTotalConnections, "max-total-connections", d.MaxTotalConnections, "client connections all listeners together keep open; one more is closed at once (default: 90% of the open-file limit; 0: no limit)")
	fs.DurationVar(&f.IdleTimeout, "idle-timeout", d.IdleTimeout, "close a client connection that sends nothing for this long with no request in flight (0: never)")
	fs.DurationVar(&f.FrameTimeout, "frame-timeout", d.FrameTimeout, "close a client connection that takes longer than this to send one frame, from its first byte (0: never)")
	fs.Int64Var(&f.MaxBufferedBytes, "max-buffered-bytes", d.MaxBufferedBytes, "bytes all client connections may hold in read buffers grown for frames over 16 KiB (0: no cap)")
}

// apply validates the flags and sets them on srv.
func (f *limitFlags) apply(srv *proxy.Server) error {
	if f.MaxConnections < 0 || f.MaxTotalConnections < 0 || f.IdleTimeout < 0 || f.FrameTimeout < 0 || f.MaxBufferedBytes < 0 {
		return errors.New("--max-connections, --max-total-connections, --idle-timeout, --frame-timeout, --max-buffered-bytes: must not be negative")
	}
	srv.SetLimits(f.Limits)
	return nil
}
