package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/admin"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/snapshot"
)

func proxyCmd() *cobra.Command {
	var (
		logs         logFlags
		obs          observeFlags
		bootstrap    string
		adminAddr    string
		drainTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "proxy --bootstrap FILE",
		Short: "Run a proxy on the xDS resources in a bootstrap file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.build()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if bootstrap == "" {
				return errors.New("--bootstrap: required")
			}
			res, err := snapshot.LoadFile(bootstrap)
			if err != nil {
				return err
			}
			srv := proxy.New(log, metrics.NewProxy())
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			stopTracing, err := obs.startTracing(ctx, srv)
			if err != nil {
				return err
			}
			defer func() { _ = stopTracing(context.Background()) }()
			if err := srv.Apply(res); err != nil {
				return fmt.Errorf("%s: %w", bootstrap, err)
			}
			log.Info("config applied", zap.String("bootstrap", bootstrap), zap.Int("listeners", len(res.Listeners)))
			return serve(ctx, log, srv, adminAddr, obs.adminOptions(&logs), drainTimeout)
		},
	}
	logs.register(cmd)
	obs.register(cmd, false)
	cmd.Flags().StringVar(&bootstrap, "bootstrap", "", "YAML or JSON file with the xDS resources to serve")
	cmd.Flags().StringVar(&adminAddr, "admin", "127.0.0.1:15000", "admin address (/ready, /metrics, /config_dump, /clusters)")
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	return cmd
}

// serve runs the admin server until ctx ends, then drains the proxy.
func serve(ctx context.Context, log *zap.Logger, srv *proxy.Server, adminAddr string, opts admin.Options, drainTimeout time.Duration) error {
	ln, err := net.Listen("tcp", adminAddr)
	if err != nil {
		return fmt.Errorf("--admin: %w", err)
	}
	hs := &http.Server{Handler: admin.NewHandler(srv, opts), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	log.Info("admin listening", zap.Stringer("address", ln.Addr()))

	<-ctx.Done()
	log.Info("draining", zap.Duration("timeout", drainTimeout))
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	err = srv.Shutdown(dctx)
	_ = hs.Shutdown(dctx)
	if err != nil {
		log.Warn("drain incomplete", zap.Error(err))
	}
	return nil
}
