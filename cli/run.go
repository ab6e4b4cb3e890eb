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
	"github.com/metamesh/metamesh/controlplane/pipeline"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
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
		ioMode       ioModeFlag
		dir          string
		adminAddr    string
		listenAddr   string
		rootNS       string
		debounce     time.Duration
		drainTimeout time.Duration
		reqTimeout   time.Duration
		ads          embeddedADS
		capture      captureFlags
		regs         registryFlags
		mtlsMode     mtlsModeFlag
		identity     identityFiles
	)
	cmd := &cobra.Command{
		Use:   "run --config DIR",
		Short: "Embedded default: route traffic by the YAML in DIR, applying edits live",
		Long: "run puts the file-mode control plane and one proxy in one process. It reads\n" +
			"every ServiceEntry, DestinationPolicy, MetaRouter, ApplicationProtocol and\n" +
			"AuthorizationPolicy in DIR (Aeraki's MetaRouter, ApplicationProtocol and\n" +
			"DubboAuthorizationPolicy too), translates them to\n" +
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
			mode, err := mtlsMode.value()
			if err != nil {
				return err
			}
			pm := metrics.NewProxy()
			srv := proxy.New(log, pm)
			if err := limits.apply(srv); err != nil {
				return err
			}
			if err := ioMode.apply(srv); err != nil {
				return err
			}
			srv.SetDefaultTimeout(reqTimeout)
			if err := capture.apply(cmd, log, srv); err != nil {
				return err
			}
			store, watchIdentity, err := identity.apply(log, srv)
			if err != nil {
				return err
			}
			// An endpoint's serviceAccount is expected in the trust
			// domain of the proxy's own identity, else --trust-domain's.
			trustDomain := ads.ca.trustDomain
			if id := store.Current(); id != nil {
				trustDomain = id.ID.TrustDomain().Name()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			stopTracing, err := obs.startTracing(ctx, srv)
			if err != nil {
				return err
			}
			defer func() { _ = stopTracing(context.Background()) }()

			// The ADS server's and the pipeline's series go on the proxy's
			// /metrics.
			var g group
			// Served only through the capture ports, the listeners are
			// not bound, and services may share a port number
			// (docs/mesh-mode.md).
			captureOnly := capture.captureOnly(cmd)
			sinks := []pipeline.Sink{applyTo(log, srv)}
			adsSrv, err := ads.add(&g, log, pm.Registry)
			if err != nil {
				return err
			}
			if adsSrv != nil {
				sinks = append(sinks, pipeline.ToADS(adsSrv))
			}
			err = regs.addPipeline(&g, log, debounce, "--config", pipeline.Options{
				Source: pipeline.Folder(dir, debounce, log, captureOnly),
				Translate: translate.Options{ListenAddress: listenAddr, KnownCodec: knownCodec, AccessLog: accessLog, CaptureOnly: captureOnly, RootNamespace: rootNS, MTLSMode: mode,
					TrustDomain: trustDomain},
				Sinks:      sinks,
				Log:        log,
				Registerer: pm.Registry,
			})
			if err != nil {
				return err
			}
			if watchIdentity != nil {
				g.add("--identity-cert", watchIdentity)
			}
			g.add("--admin", func(ctx context.Context) error {
				opts := obs.adminOptions(&logs)
				opts.Certs = store
				return serve(ctx, log, srv, adminAddr, opts, drainTimeout)
			})
			return g.run(ctx)
		},
	}
	logs.register(cmd)
	obs.register(cmd, true)
	limits.register(cmd.Flags())
	ioMode.register(cmd.Flags())
	capture.register(cmd)
	cmd.Flags().StringVar(&dir, "config", "", "folder of config YAML, watched for changes")
	cmd.Flags().StringVar(&adminAddr, "admin", "127.0.0.1:15000", "admin address (/ready, /metrics, /config_dump, /clusters)")
	cmd.Flags().StringVar(&listenAddr, "listen-address", "0.0.0.0", "address the service ports are bound on")
	mtlsMode.register(cmd.Flags())
	identity.register(cmd.Flags())
	cmd.Flags().StringVar(&rootNS, "root-namespace", v1alpha1.RootNamespace, "namespace whose AuthorizationPolicies are mesh-wide (docs/authorization.md); istio-system keeps Aeraki's")
	cmd.Flags().DurationVar(&debounce, "debounce", file.DefaultDebounce, "quiet time after a change before the folder is reloaded")
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	cmd.Flags().DurationVar(&reqTimeout, "default-timeout", upstream.DefaultTimeout, "how long a request may wait for its upstream when its route sets no timeout; 0: forever")
	ads.register(cmd.Flags())
	regs.register(cmd.Flags())
	return cmd
}

// applyTo is the sink of run's own proxy: each set's whole mesh (every
// host, whatever its exportTo or Sidecars: docs/scoping.md) is applied to
// srv, named in /config_dump by its content hash.
func applyTo(log *zap.Logger, srv *proxy.Server) pipeline.Sink {
	return func(out *translate.Output) error {
		res := out.Resources
		versioned := *res
		versioned.Version = res.Hash()
		if err := srv.Apply(&versioned); err != nil {
			return fmt.Errorf("proxy refused the translated config: %w", err)
		}
		log.Info("config applied", zap.String("version", versioned.Version),
			zap.Int("listeners", len(versioned.Listeners)), zap.Int("clusters", len(versioned.Clusters)))
		return nil
	}
}

func knownCodec(name string) bool {
	for _, n := range protocols.Names() {
		if n == name {
			return true
		}
	}
	return false
}
