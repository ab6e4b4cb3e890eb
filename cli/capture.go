package cli

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/proxy"
)

// captureFlags are mesh mode's capture ports (docs/mesh-mode.md).
type captureFlags struct {
	outbound, inbound string
	bind              bool
}

func (f *captureFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.outbound, "capture-outbound", "", "mesh mode: serve connections redirected by metamesh iptables on this address (127.0.0.1:P also listens on [::1]:P when there is IPv6)")
	fs.StringVar(&f.inbound, "capture-inbound", "", "mesh mode: serve connections redirected inbound on this address, sending them to the local application (127.0.0.1, their original port): per request through the codec on a service's meta-protocol port, as bytes otherwise")
	fs.BoolVar(&f.bind, "bind-listeners", true, "bind the listeners' own addresses (default false with --capture-outbound or --capture-inbound: a sidecar serves them through its capture ports)")
}

// binds says whether the listeners' own addresses are bound.
func (f *captureFlags) binds(cmd *cobra.Command) bool {
	// A sidecar's service ports in its own pod are its application's: a
	// bind there would collide with it.
	if f.captures() && !cmd.Flags().Changed("bind-listeners") {
		return false
	}
	return f.bind
}

func (f *captureFlags) captures() bool { return f.outbound != "" || f.inbound != "" }

// captureOnly says whether the listeners are served only through the
// capture ports: the config is translated with translate.Options.CaptureOnly.
func (f *captureFlags) captureOnly(cmd *cobra.Command) bool { return f.captures() && !f.binds(cmd) }

// apply opens the capture ports on srv; call it before the first config.
func (f *captureFlags) apply(cmd *cobra.Command, log *zap.Logger, srv *proxy.Server) error {
	srv.SetBindListeners(f.binds(cmd))
	if f.outbound != "" {
		lns, err := listenCapture(f.outbound)
		if err != nil {
			return fmt.Errorf("--capture-outbound: %w", err)
		}
		for _, ln := range lns {
			if err := srv.CaptureOutbound(ln); err != nil {
				return err
			}
			log.Info("outbound capture listening", zap.Stringer("address", ln.Addr()))
		}
	}
	if f.inbound != "" {
		ln, err := net.Listen("tcp", f.inbound)
		if err != nil {
			return fmt.Errorf("--capture-inbound: %w", err)
		}
		if err := srv.CaptureInbound(ln); err != nil {
			return err
		}
		log.Info("inbound capture listening", zap.Stringer("address", ln.Addr()))
	}
	return nil
}

// listenCapture listens on addr and, for 127.0.0.1:P, also on [::1]:P:
// the capture rules redirect IPv6 connections to [::1]. A host without
// IPv6 (no ::1) gets the IPv4 listener alone.
func listenCapture(addr string) ([]net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	if host != "127.0.0.1" {
		return []net.Listener{ln}, nil
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String()) // port 0 was given one
	ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", port))
	switch {
	case err == nil:
		return []net.Listener{ln, ln6}, nil
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EAFNOSUPPORT):
		return []net.Listener{ln}, nil
	default:
		_ = ln.Close()
		return nil, fmt.Errorf("[::1]:%s: %w", port, err)
	}
}
