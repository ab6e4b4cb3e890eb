package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/admin"
)

// serve runs the proxy's admin server until ctx ends (or the server
// fails), then drains the proxy.
func serve(ctx context.Context, log *zap.Logger, srv *proxy.Server, adminAddr string, opts admin.Options, drainTimeout time.Duration) error {
	ln, err := net.Listen("tcp", adminAddr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: admin.NewHandler(srv, opts), ReadHeaderTimeout: 5 * time.Second}
	log.Info("admin listening", zap.Stringer("address", ln.Addr()))
	if admin.Exposed(ln.Addr()) {
		log.Warn("ADMIN ADDRESS IS NOT LOOPBACK: anyone who can reach it reads the whole config (/config_dump) and changes the log level (/logging), without authentication; bind it to 127.0.0.1 unless a firewall or network policy guards it",
			zap.Stringer("address", ln.Addr()))
	}
	return serveHTTP(ctx, hs, ln, drainTimeout, func(dctx context.Context) {
		log.Info("draining", zap.Duration("timeout", drainTimeout))
		if err := srv.Shutdown(dctx); err != nil {
			log.Warn("drain incomplete", zap.Error(err))
		}
	})
}

// serveAdmin serves the control plane's admin endpoints h on addr until
// ctx ends, then waits up to drain for the requests in flight.
func serveAdmin(ctx context.Context, log *zap.Logger, addr string, h http.Handler, drain time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Info("admin listening", zap.Stringer("address", ln.Addr()))
	return serveHTTP(ctx, &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, ln, drain, nil)
}

// serveHTTP serves hs on ln until ctx ends or serving fails, then calls
// drain (if not nil) and shuts hs down, both within timeout. It returns
// serving's error (nil when ctx ended).
func serveHTTP(ctx context.Context, hs *http.Server, ln net.Listener, timeout time.Duration, drain func(context.Context)) error {
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	dctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if drain != nil {
		drain(dctx)
	}
	if hs.Shutdown(dctx) != nil {
		_ = hs.Close() // the timeout passed: requests still open are cut
	}
	if err == nil {
		err = <-served
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// addADS adds to g the ADS server srv: its publishing loop, and its gRPC
// server on addr (TLS unless tlsCfg is nil).
func addADS(g *group, srv *xds.Server, addr string, tlsCfg *tls.Config, log *zap.Logger) {
	g.add("ADS server", srv.Run)
	g.add("--xds", func(ctx context.Context) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		gs := grpc.NewServer(xds.GRPCOptions(tlsCfg)...)
		srv.Register(gs)
		defer gs.Stop()
		stop := context.AfterFunc(ctx, gs.Stop)
		defer stop()
		log.Info("serving the config over ADS", zap.Stringer("xds", ln.Addr()), zap.Bool("tls", tlsCfg != nil),
			zap.Bool("client_certificates", tlsCfg != nil && tlsCfg.ClientCAs != nil))
		if err := gs.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return err
		}
		return nil
	})
}
