package cli

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/upstream"
)

func runCmd() *cobra.Command {
	var (
		logs         logFlags
		obs          observeFlags
		limits       limitFlags
		dir          string
		adminAddr    string
		listenAddr   string
		debounce     time.Duration
		drainTimeout time.Duration
		reqTimeout   time.Duration
		ads          embeddedADS
		capture      captureFlags
		regs         registryFlags
	)
	cmd := &cobra.Command{
		Use:   "run --config DIR",
		Short: "Embedded default: route traffic by the YAML in DIR, applying edits live",
		Long: "run puts the file-mode control plane and one proxy in one process. It reads\n" +
			"every ServiceEntry, DestinationPolicy, MetaRouter and ApplicationProtocol in\n" +
			"DIR (Aeraki's MetaRouter and ApplicationProtocol too), translates them to\n" +
			"xDS and applies them to the proxy; on every change it does so again. An\n" +
			"invalid edit is logged with the file and field, and the last good config\n" +
			"stays in force. With --xds ADDR it also serves that config over ADS to\n" +
			"other proxies (`metamesh proxy --xds`), TLS or --insecure as for\n" +
			"`metamesh controlplane`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.build()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if dir == "" {
				return errors.New("--config: required")
			}
			accessLog, err := obs.accessLogConfig()
			if err != nil {
				return err
			}
			if reqTimeout < 0 {
				return errors.New("--default-timeout: must not be negative (0 turns it off)")
			}
			pm := metrics.NewProxy()
			srv := proxy.New(log, pm)
			if err := limits.apply(srv); err != nil {
				return err
			}
			srv.SetDefaultTimeout(reqTimeout)
			if err := capture.apply(cmd, log, srv); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			stopTracing, err := obs.startTracing(ctx, srv)
			if err != nil {
				return err
			}
			defer func() { _ = stopTracing(context.Background()) }()

			// The ADS server's series go on the proxy's /metrics.
			publish, err := ads.start(ctx, log, srv.Metrics().Registry)
			if err != nil {
				return err
			}
			opts := translate.Options{ListenAddress: listenAddr, KnownCodec: knownCodec, AccessLog: accessLog}
			apply := func(cfg *file.Config) error { return applyConfig(log, srv, cfg, opts, publish) }
			if apply, err = regs.wrapApply(ctx, log, debounce, pm.Registry, apply); err != nil {
				return err
			}
			watchErr := make(chan error, 1)
			go func() { watchErr <- file.Watch(ctx, dir, debounce, log, apply) }()
			serveErr := make(chan error, 1)
			go func() { serveErr <- serve(ctx, log, srv, adminAddr, obs.adminOptions(&logs), drainTimeout) }()
			select {
			case err := <-watchErr:
				if err != nil {
					stop()
					<-serveErr
					return fmt.Errorf("--config: %w", err)
				}
				return <-serveErr
			case err := <-serveErr:
				return err
			}
		},
	}
	logs.register(cmd)
	obs.register(cmd, true)
	limits.register(cmd.Flags())
	capture.register(cmd)
	cmd.Flags().StringVar(&dir, "config", "", "folder of config YAML, watched for changes")
	cmd.Flags().StringVar(&adminAddr, "admin", "127.0.0.1:15000", "admin address (/ready, /metrics, /config_dump, /clusters)")
	cmd.Flags().StringVar(&listenAddr, "listen-address", "0.0.0.0", "address the service ports are bound on")
	cmd.Flags().DurationVar(&debounce, "debounce", file.DefaultDebounce, "quiet time after a change before the folder is reloaded")
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	cmd.Flags().DurationVar(&reqTimeout, "default-timeout", upstream.DefaultTimeout, "how long a request may wait for its upstream when its route sets no timeout; 0: forever")
	ads.register(cmd.Flags())
	regs.register(cmd.Flags())
	return cmd
}

// applyConfig translates cfg and applies it to the proxy, logging every
// object the translation did not fully accept.
func applyConfig(log *zap.Logger, srv *proxy.Server, cfg *file.Config, opts translate.Options, publish func(*xdsapi.Resources)) error {
	out := translate.Translate(&translate.Input{
		ServiceEntries:       cfg.ServiceEntries,
		DestinationPolicies:  cfg.DestinationPolicies,
		MetaRouters:          cfg.MetaRouters,
		ApplicationProtocols: cfg.ApplicationProtocols,
	}, opts)
	out.Resources.Version = out.Resources.Hash()
	for _, p := range conditionProblems(out, cfg) {
		log.Warn("config object not fully applied", zap.String("problem", p))
	}
	if err := srv.Apply(out.Resources); err != nil {
		return fmt.Errorf("proxy refused the translated config: %w", err)
	}
	publish(out.Resources)
	log.Info("config applied", zap.String("version", out.Resources.Version),
		zap.Int("listeners", len(out.Resources.Listeners)), zap.Int("clusters", len(out.Resources.Clusters)))
	return nil
}

func knownCodec(name string) bool {
	for _, n := range protocols.Names() {
		if n == name {
			return true
		}
	}
	return false
}
