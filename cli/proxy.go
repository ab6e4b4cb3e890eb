package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/certs"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/upstream"
	"github.com/metamesh/metamesh/proxy/xdsclient"
)

func proxyCmd() *cobra.Command {
	var (
		logs         logFlags
		obs          observeFlags
		limits       limitFlags
		ioMode       ioModeFlag
		ads          adsFlags
		capture      captureFlags
		identity     identityFiles
		bootstrap    string
		adminAddr    string
		drainTimeout time.Duration
		reqTimeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "proxy (--xds ADDR [--node ID] | --bootstrap FILE)",
		Short: "Run a proxy on the config from a control plane (ADS) or a bootstrap file",
		Long: "proxy serves the xDS resources it gets from the control plane at --xds, or\n" +
			"those in --bootstrap. With both, the bootstrap config serves until the\n" +
			"control plane's first complete config replaces it. With --xds alone, the\n" +
			"proxy serves nothing and /ready answers 503 until the control plane has\n" +
			"answered; when the control plane goes away, the proxy keeps its last\n" +
			"config and reconnects with backoff. The channel is TLS (--xds-ca);\n" +
			"plaintext only with --insecure.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.build()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if bootstrap == "" && ads.addr == "" {
				return errors.New("--xds or --bootstrap: one is required")
			}
			var res *xdsapi.Resources
			if bootstrap != "" {
				if res, err = xdsapi.LoadFile(bootstrap); err != nil {
					return err
				}
				res.Version = res.Hash() // names it in /config_dump, as metamesh run's sets
			}
			if reqTimeout < 0 {
				return errors.New("--default-timeout: must not be negative (0 turns it off)")
			}
			srv := proxy.New(log, metrics.NewProxy())
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
			sds := store
			if watchIdentity != nil {
				sds = nil // the files are the identity: the control plane's certificate is not asked for
			}
			client, err := ads.client(cmd, log, srv, sds)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			stopTracing, err := obs.startTracing(ctx, srv)
			if err != nil {
				return err
			}
			defer func() { _ = stopTracing(context.Background()) }()
			if res != nil {
				if err := srv.Apply(res); err != nil {
					return fmt.Errorf("%s: %w", bootstrap, err)
				}
				log.Info("config applied", zap.String("bootstrap", bootstrap), zap.String("version", res.Version), zap.Int("listeners", len(res.Listeners)))
			}
			var g group
			if client != nil {
				g.add("--xds", client.Run)
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
	obs.register(cmd, false)
	limits.register(cmd.Flags())
	ioMode.register(cmd.Flags())
	capture.register(cmd)
	ads.register(cmd)
	identity.register(cmd.Flags())
	cmd.Flags().StringVar(&bootstrap, "bootstrap", "", "YAML or JSON file with the xDS resources to serve (with --xds: until the control plane's first config)")
	cmd.Flags().StringVar(&adminAddr, "admin", "127.0.0.1:15000", "admin address (/ready, /metrics, /config_dump, /clusters)")
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long requests in flight may take to finish")
	cmd.Flags().DurationVar(&reqTimeout, "default-timeout", upstream.DefaultTimeout, "how long a request may wait for its upstream when its route sets no timeout; 0: forever")
	return cmd
}

// adsFlags are the proxy's control plane connection.
type adsFlags struct {
	addr, node, cluster string
	gateway             string
	protocol            string
	tls                 xdsclient.TLSFiles
	plaintext           bool
	token               string
}

// DefaultIdentityToken is where injected sidecars find their pod's
// projected service-account token (audience metamesh).
const DefaultIdentityToken = "/var/run/secrets/metamesh/token"

func (f *adsFlags) register(cmd *cobra.Command) {
	host, _ := os.Hostname()
	fs := cmd.Flags()
	fs.StringVar(&f.addr, "xds", "", "control plane ADS address, host:port")
	fs.StringVar(&f.node, "node", host, "node ID the proxy gives the control plane (alias --node-id)")
	fs.StringVar(&f.cluster, "cluster", "metamesh", "node cluster the proxy gives the control plane")
	fs.StringVar(&f.gateway, "gateway", "", "namespace/name of the gateway the proxy serves: it gets the routes of the MetaRouters naming that gateway instead of the sidecars' (docs/gateways.md); empty: a sidecar")
	fs.StringVar(&f.protocol, "xds-protocol", xdsclient.ProtocolDelta, "ADS variant: delta (a change sends only what changed) or sotw (state of the world)")
	fs.StringVar(&f.tls.CA, "xds-ca", "", "PEM CA bundle the control plane's certificate must chain to")
	fs.StringVar(&f.tls.Cert, "xds-cert", "", "PEM client certificate for a control plane that requires one")
	fs.StringVar(&f.tls.Key, "xds-key", "", "PEM private key of --xds-cert")
	fs.StringVar(&f.tls.ServerName, "xds-server-name", "", "name to verify in the control plane's certificate (default: the host of --xds)")
	fs.BoolVar(&f.plaintext, "insecure", false, "connect to the control plane in plaintext, without TLS (aliases --xds-plaintext, --plaintext)")
	fs.StringVar(&f.token, "identity-token", DefaultIdentityToken, "file holding the token that proves the proxy's identity to the control plane for its workload certificate (Kubernetes: the pod's projected service-account token, audience metamesh), read at each connection; at the default path, only if it exists")
	fs.SetNormalizeFunc(aliases(map[string]string{"node-id": "node", "xds-plaintext": "insecure", "plaintext": "insecure"}))
}

// client is the ADS client the flags ask for, feeding srv and, with the
// workload certificate the control plane issues, store; nil without
// --xds.
func (f *adsFlags) client(cmd *cobra.Command, log *zap.Logger, srv *proxy.Server, store *certs.Store) (*xdsclient.Client, error) {
	if f.addr == "" {
		if f.gateway != "" {
			return nil, errors.New("--gateway: only with --xds (the control plane sends a gateway its routes)")
		}
		return nil, nil
	}
	if f.gateway != "" {
		ns, name, ok := strings.Cut(f.gateway, "/")
		if !ok {
			return nil, fmt.Errorf("--gateway %q: want namespace/name", f.gateway)
		}
		if msgs := v1alpha1.GatewayNameErrors(ns, name, true); len(msgs) > 0 {
			return nil, fmt.Errorf("--gateway %q: %s", f.gateway, strings.Join(msgs, "; "))
		}
	}
	var tlsCfg *tls.Config
	switch {
	case f.plaintext && f.tls != (xdsclient.TLSFiles{}):
		return nil, errors.New("--insecure: no --xds-ca, --xds-cert, --xds-key or --xds-server-name with it")
	case f.plaintext:
	case f.tls.CA == "":
		return nil, errors.New("--xds-ca: required (the control plane channel is TLS; --insecure for plaintext)")
	default:
		var err error
		if tlsCfg, err = xdsclient.ClientTLS(f.tls); err != nil {
			return nil, err
		}
	}
	token := f.token
	if _, err := os.Stat(token); err != nil && !cmd.Flags().Changed("identity-token") {
		token = "" // not in a pod with one: the xDS client certificate, if any, proves who the proxy is
	}
	updates := srv.Metrics().XDSUpdates
	return xdsclient.New(xdsclient.Config{
		Address: f.addr, NodeID: f.node, Cluster: f.cluster, Gateway: f.gateway, Protocol: f.protocol, TLS: tlsCfg, Apply: srv.Apply, Log: log.Named("xds"),
		Certs: store, TokenFile: token,
		OnResponse: func(typ string, acked bool) {
			result := "nack"
			if acked {
				result = "ack"
			}
			updates.WithLabelValues(typ, result).Inc()
		},
	})
}
