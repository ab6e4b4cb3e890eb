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

	"github.com/go-logr/zapr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/kube"
	"github.com/metamesh/metamesh/controlplane/pipeline"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

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

// restConfig is the config of the cluster of --kubeconfig, or of the
// Pod's own cluster.
func (k *kubeFlags) restConfig() (*rest.Config, error) {
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
	return cfg, nil
}

// podNamespace is the namespace of the control plane's Pod ("" out of a
// Pod).
func podNamespace() string {
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// caNamespace is where the CA Secret is kept: --leader-elect-namespace,
// else the Pod's namespace, else metamesh-system.
func (k *kubeFlags) caNamespace() string {
	for _, ns := range []string{k.leaderNS, podNamespace()} {
		if ns != "" {
			return ns
		}
	}
	return v1alpha1.RootNamespace
}

// source is the Kubernetes source: CRDs, Services, EndpointSlices and
// Pods of the cluster of cfg.
func (k *kubeFlags) source(cfg *rest.Config, log *zap.Logger, debounce time.Duration, opts translate.Options, regs *registryFlags) (pipeline.Source, error) {
	var err error
	ns := k.leaderNS
	if k.leaderElect && ns == "" {
		ns = podNamespace()
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
	return pipeline.Kubernetes(cfg, kopts), nil
}

func controlplaneCmd() *cobra.Command {
	var (
		logs                   logFlags
		alog                   accessLogFlags
		kubef                  kubeFlags
		regs                   registryFlags
		dir                    string
		xdsAddr, adminAddr     string
		listenAddr, rootNS     string
		debounce, pushQuiet    time.Duration
		tlsFiles               xds.TLSFiles
		plaintext, captureOnly bool
		drainTimeout, maxPush  time.Duration
		inflightBytes          int64
		certsCA                caFlags
		mtlsMode               mtlsModeFlag
	)
	cmd := &cobra.Command{
		Use:   "controlplane [--config DIR | --kubeconfig FILE] (--xds-cert F --xds-key F [--xds-client-ca F] | --insecure)",
		Short: "Serve the config of a folder or a Kubernetes cluster to proxies over ADS (xDS over gRPC)",
		Long: "controlplane translates the config (every ServiceEntry, DestinationPolicy,\n" +
			"MetaRouter, ApplicationProtocol and AuthorizationPolicy in DIR, and\n" +
			"Aeraki's MetaRouter, ApplicationProtocol and DubboAuthorizationPolicy,\n" +
			"watched for changes; without\n" +
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
			mode, err := mtlsMode.value()
			if err != nil {
				return err
			}
			opts := translate.Options{ListenAddress: listenAddr, AccessLog: accessLog, CaptureOnly: captureOnly, RootNamespace: rootNS, MTLSMode: mode,
				TrustDomain: certsCA.trustDomain}
			src, name := pipeline.Folder(dir, debounce, log, captureOnly), "--config"
			var kubeCfg *rest.Config
			switch {
			case dir != "" && kubef.kubeconfig != "":
				return errors.New("--config and --kubeconfig: one source at a time")
			case dir == "":
				if kubeCfg, err = kubef.restConfig(); err != nil {
					return err
				}
				if src, err = kubef.source(kubeCfg, log, debounce, opts, &regs); err != nil {
					return err
				}
				name = "kubernetes"
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			srv := xds.New(xds.Options{Debounce: pushQuiet, MaxDelay: maxPush, InflightBytes: inflightBytes, Log: log, Registerer: reg})
			if err := certsCA.issue(cmd.Context(), log, srv, kubeCfg, kubef.caNamespace()); err != nil {
				return err
			}
			var g group
			addADS(&g, srv, xdsAddr, tlsCfg, log)
			g.add("--admin", func(ctx context.Context) error {
				return serveAdmin(ctx, log, adminAddr, srv.Handler(reg), drainTimeout)
			})
			err = regs.addPipeline(&g, log, debounce, name, pipeline.Options{
				Source: src, Translate: opts, Sinks: []pipeline.Sink{pipeline.ToADS(srv)}, Log: log, Registerer: reg,
			})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return g.run(ctx)
		},
	}
	logs.register(cmd)
	alog.register(cmd, " of the proxies (each writes its own)")
	f := cmd.Flags()
	kubef.register(f)
	regs.register(f)
	certsCA.register(f)
	f.StringVar(&dir, "config", "", "folder of config YAML, watched for changes (without it: Kubernetes)")
	f.StringVar(&xdsAddr, "xds", ":15010", "address ADS is served on (alias --xds-listen)")
	f.StringVar(&adminAddr, "admin", "127.0.0.1:15014", "admin address: /ready, /metrics, /debug/proxies (alias --metrics)")
	f.StringVar(&listenAddr, "listen-address", "0.0.0.0", "address the proxies bind the service ports on")
	mtlsMode.register(f)
	f.StringVar(&rootNS, "root-namespace", v1alpha1.RootNamespace, "namespace whose AuthorizationPolicies are mesh-wide (docs/authorization.md); istio-system keeps Aeraki's")
	f.BoolVar(&captureOnly, "capture-only", false, "the proxies are sidecars serving the service ports only through their capture ports (docs/mesh-mode.md): listeners are not bound, and Thrift or Redis services at addresses of their own may share a port number")
	f.DurationVar(&debounce, "debounce", file.DefaultDebounce, "quiet time after a change in the folder before it is reloaded")
	f.DurationVar(&pushQuiet, "push-debounce", xds.DefaultDebounce, "quiet time after a config change before it is pushed to the proxies")
	f.DurationVar(&maxPush, "push-max-delay", xds.DefaultMaxDelay, "longest a steady stream of changes can hold a push back")
	f.Int64Var(&inflightBytes, "push-inflight-bytes", xds.DefaultInflightBytes, "bytes of responses made for one proxy alone (a reconnecting proxy's diff, a subscription by name), sent and not yet acknowledged, at most, across all proxies; responses encoded once and shared by every proxy are not counted")
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
