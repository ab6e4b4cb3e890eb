package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/zapr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/kube"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/controlplane/xds"
)

// source feeds the control plane: it calls publish with every new,
// complete set of objects until ctx ends, and returns an error only when it
// can't run at all. File mode is fileSource; another source (Kubernetes)
// plugs in the same way.
type source func(ctx context.Context, publish func(*translate.Input)) error

// fileSource watches a config folder, as `metamesh run` does.
func fileSource(dir string, debounce time.Duration, log *zap.Logger) source {
	return func(ctx context.Context, publish func(*translate.Input)) error {
		err := file.Watch(ctx, dir, debounce, log, func(cfg *file.Config) error {
			publish(&translate.Input{
				ServiceEntries:       cfg.ServiceEntries,
				DestinationPolicies:  cfg.DestinationPolicies,
				MetaRouters:          cfg.MetaRouters,
				ApplicationProtocols: cfg.ApplicationProtocols,
			})
			return nil
		})
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		return nil
	}
}

// kubeFlags select and tune the Kubernetes source.
type kubeFlags struct {
	kubeconfig, leaderNS, leaderID, clusterDomain string
	leaderElect                                   bool
	namespaces                                    []string
	inject                                        injectFlags
}

func (k *kubeFlags) register(f *pflag.FlagSet) {
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster to watch (default: in-cluster, when --config is not set)")
	f.BoolVar(&k.leaderElect, "leader-elect", true, "only the replica holding the Lease writes status; every replica serves xDS")
	f.StringVar(&k.leaderNS, "leader-elect-namespace", "", "namespace of the Lease (default: the Pod's namespace)")
	f.StringVar(&k.leaderID, "leader-elect-id", kube.DefaultLeaderElectionID, "name of the Lease")
	f.StringVar(&k.clusterDomain, "cluster-domain", kube.DefaultClusterDomain, "DNS domain Service hosts end in")
	f.StringSliceVar(&k.namespaces, "namespaces", nil, "watch only these namespaces (comma-separated; default: all)")
	k.inject.register(f)
}

// source is the Kubernetes source: CRDs, Services, EndpointSlices and
// Pods of the cluster of --kubeconfig, or of the Pod's own cluster.
func (k *kubeFlags) source(log *zap.Logger, debounce time.Duration, opts translate.Options, regs *registryFlags) (source, error) {
	var cfg *rest.Config
	var err error
	if k.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", k.kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig: %w", err)
	}
	ns := k.leaderNS
	if k.leaderElect && ns == "" {
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
			ns = strings.TrimSpace(string(b))
		}
	}
	logger := zapr.NewLogger(log)
	klog.SetLogger(logger) // client-go's leader election logs through klog
	var namespaces []string
	for _, ns := range k.namespaces {
		if ns = strings.TrimSpace(ns); ns != "" {
			namespaces = append(namespaces, ns)
		}
	}
	kopts := kube.Options{ClusterDomain: k.clusterDomain, Namespaces: namespaces, Debounce: debounce, LeaderElection: k.leaderElect,
		LeaderElectionNamespace: ns, LeaderElectionID: k.leaderID, Translate: opts, Logger: logger}
	if kopts.Setup, err = k.inject.setup(k.clusterDomain, logger); err != nil {
		return nil, err
	}
	if kopts.Registries, err = regs.status(log, debounce); err != nil {
		return nil, err
	}
	return func(ctx context.Context, publish func(*translate.Input)) error {
		return kube.Run(ctx, cfg, kopts, publish)
	}, nil
}

func controlplaneCmd() *cobra.Command {
	var (
		logs                  logFlags
		alog                  accessLogFlags
		kubef                 kubeFlags
		regs                  registryFlags
		dir                   string
		xdsAddr, adminAddr    string
		listenAddr            string
		debounce, pushQuiet   time.Duration
		tlsFiles              xds.TLSFiles
		plaintext             bool
		drainTimeout, maxPush time.Duration
	)
	cmd := &cobra.Command{
		Use:   "controlplane [--config DIR | --kubeconfig FILE] (--xds-cert F --xds-key F [--xds-client-ca F] | --insecure)",
		Short: "Serve the config of a folder or a Kubernetes cluster to proxies over ADS (xDS over gRPC)",
		Long: "controlplane translates the config (every ServiceEntry, DestinationPolicy,\n" +
			"MetaRouter and ApplicationProtocol in DIR, watched for changes; without\n" +
			"--config, those of the cluster of --kubeconfig or of its own Pod, with\n" +
			"Services, EndpointSlices and Pods, writing status back) to xDS and\n" +
			"serves it over ADS to every proxy started with `metamesh proxy --xds`.\n" +
			"The channel is TLS; --xds-client-ca also requires a client certificate\n" +
			"signed by that CA from every proxy. Plaintext only with --insecure.\n" +
			"Admin: /ready, /metrics and /debug/proxies on --admin.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := logs.build()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			tlsCfg, err := serverTLS(tlsFiles, plaintext)
			if err != nil {
				return err
			}
			accessLog, err := alog.accessLogConfig()
			if err != nil {
				return err
			}
			opts := translate.Options{ListenAddress: listenAddr, AccessLog: accessLog}
			src := fileSource(dir, debounce, log)
			switch {
			case dir != "" && kubef.kubeconfig != "":
				return errors.New("--config and --kubeconfig: one source at a time")
			case dir == "":
				if src, err = kubef.source(log, debounce, opts, &regs); err != nil {
					return err
				}
			}
			src, regMetrics, err := regs.wrap(src, log, debounce)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runControlPlane(ctx, log, cpConfig{
				source:     src,
				collectors: regMetrics,
				opts:       opts,
				xdsAddr:    xdsAddr,
				adminAddr:  adminAddr,
				tls:        tlsCfg,
				server:     xds.Options{Debounce: pushQuiet, MaxDelay: maxPush, Log: log},
				drain:      drainTimeout,
			})
		},
	}
	logs.register(cmd)
	alog.register(cmd, " of the proxies (each writes its own)")
	f := cmd.Flags()
	kubef.register(f)
	regs.register(f)
	f.StringVar(&dir, "config", "", "folder of config YAML, watched for changes (without it: Kubernetes)")
	f.StringVar(&xdsAddr, "xds", ":15010", "address ADS is served on (alias --xds-listen)")
	f.StringVar(&adminAddr, "admin", "127.0.0.1:15014", "admin address: /ready, /metrics, /debug/proxies (alias --metrics)")
	f.StringVar(&listenAddr, "listen-address", "0.0.0.0", "address the proxies bind the service ports on")
	f.DurationVar(&debounce, "debounce", file.DefaultDebounce, "quiet time after a change in the folder before it is reloaded")
	f.DurationVar(&pushQuiet, "push-debounce", xds.DefaultDebounce, "quiet time after a config change before it is pushed to the proxies")
	f.DurationVar(&maxPush, "push-max-delay", xds.DefaultMaxDelay, "longest a steady stream of changes can hold a push back")
	f.DurationVar(&drainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long to wait for the admin server's requests")
	f.StringVar(&tlsFiles.Cert, "xds-cert", "", "PEM certificate (chain) of the ADS server")
	f.StringVar(&tlsFiles.Key, "xds-key", "", "PEM private key of --xds-cert")
	f.StringVar(&tlsFiles.ClientCA, "xds-client-ca", "", "PEM CA bundle: require every proxy to present a client certificate it signed")
	f.BoolVar(&plaintext, "insecure", false, "serve ADS in plaintext, without TLS (aliases --xds-plaintext, --plaintext)")
	f.SetNormalizeFunc(aliases(map[string]string{"xds-listen": "xds", "metrics": "admin", "xds-plaintext": "insecure", "plaintext": "insecure"}))
	return cmd
}

// aliases maps alternative flag names to the registered ones.
func aliases(m map[string]string) func(*pflag.FlagSet, string) pflag.NormalizedName {
	return func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := m[name]; ok {
			name = to
		}
		return pflag.NormalizedName(name)
	}
}

// serverTLS is the ADS server's TLS from the flags: nil only when
// plaintext was asked for, and then no TLS flag may be given.
func serverTLS(f xds.TLSFiles, plaintext bool) (*tls.Config, error) {
	if plaintext {
		if f != (xds.TLSFiles{}) {
			return nil, errors.New("--insecure: no --xds-cert, --xds-key or --xds-client-ca with it")
		}
		return nil, nil
	}
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("--xds-cert and --xds-key: required (ADS is served over TLS; --insecure for plaintext)")
	}
	return xds.ServerTLS(f)
}

// cpConfig is what runControlPlane runs.
type cpConfig struct {
	source             source
	collectors         []prometheus.Collector // more series for /metrics
	opts               translate.Options
	xdsAddr, adminAddr string
	tls                *tls.Config // nil: plaintext
	server             xds.Options
	drain              time.Duration
}

// runControlPlane serves ADS and the admin endpoints, feeding the ADS
// server from the source, until ctx ends or something fails.
func runControlPlane(ctx context.Context, log *zap.Logger, c cpConfig) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(c.collectors...)
	c.server.Registerer = reg
	srv := xds.New(ctx, c.server)

	xdsLn, err := net.Listen("tcp", c.xdsAddr)
	if err != nil {
		return fmt.Errorf("--xds: %w", err)
	}
	adminLn, err := net.Listen("tcp", c.adminAddr)
	if err != nil {
		_ = xdsLn.Close()
		return fmt.Errorf("--admin: %w", err)
	}
	g := grpc.NewServer(xds.GRPCOptions(c.tls)...)
	srv.Register(g)
	hs := &http.Server{Handler: srv.Handler(reg), ReadHeaderTimeout: 5 * time.Second}
	errs := make(chan error, 3)
	go func() { errs <- g.Serve(xdsLn) }()
	go func() { errs <- hs.Serve(adminLn) }()
	cm := newCPMetrics(reg)
	go func() {
		errs <- c.source(ctx, func(in *translate.Input) {
			start := time.Now()
			out := translate.Translate(in, c.opts)
			cm.observe(out, time.Since(start))
			logConditions(log, out)
			srv.Update(out.Resources)
		})
	}()
	log.Info("control plane serving", zap.Stringer("xds", xdsLn.Addr()), zap.Bool("tls", c.tls != nil),
		zap.Bool("client_certificates", c.tls != nil && c.tls.ClientCAs != nil), zap.Stringer("admin", adminLn.Addr()))

	select {
	case <-ctx.Done():
		err = nil
	case err = <-errs:
	}
	cancel()
	g.Stop()
	dctx, dcancel := context.WithTimeout(context.Background(), c.drain)
	defer dcancel()
	_ = hs.Shutdown(dctx)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

// cpMetrics are the control plane's translation series.
type cpMetrics struct {
	translate prometheus.Histogram
	objects   *prometheus.GaugeVec
}

func newCPMetrics(reg prometheus.Registerer) *cpMetrics {
	m := &cpMetrics{
		translate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "metamesh_controlplane_translation_duration_seconds",
			Help:    "Time to translate the config objects to xDS resources.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "metamesh_controlplane_objects",
			Help: "Config objects in the last translation, by kind and by the status of each condition.",
		}, []string{"kind", "condition", "status"}),
	}
	reg.MustRegister(m.translate, m.objects)
	return m
}

// observe records one translation.
func (m *cpMetrics) observe(out *translate.Output, took time.Duration) {
	m.translate.Observe(took.Seconds())
	m.objects.Reset()
	for key, conds := range out.Status {
		kind, _, _ := strings.Cut(key, "/")
		for _, c := range conds {
			m.objects.WithLabelValues(kind, c.Type, string(c.Status)).Inc()
		}
	}
}

// logConditions logs every object the translation did not fully accept.
func logConditions(log *zap.Logger, out *translate.Output) {
	for key, conds := range out.Status {
		for _, c := range conds {
			if c.Status != metav1.ConditionTrue {
				log.Warn("config object not fully applied", zap.String("object", key),
					zap.String("condition", c.Type), zap.String("reason", c.Reason), zap.String("message", c.Message))
			}
		}
	}
}
