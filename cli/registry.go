package cli

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/kube"
	"github.com/metamesh/metamesh/controlplane/registry"
	"github.com/metamesh/metamesh/controlplane/registry/etcd"
	"github.com/metamesh/metamesh/controlplane/registry/zookeeper"
	"github.com/metamesh/metamesh/controlplane/translate"
)

// registryFlags are --registry: Dubbo registries whose providers are
// merged into the config of the folder or cluster.
type registryFlags struct {
	urls []string
	m    *registry.Mixer // made by the first call of mixer
}

func (r *registryFlags) register(f *pflag.FlagSet) {
	f.StringArrayVar(&r.urls, "registry", nil, "merge the Dubbo providers registered in zookeeper://HOST:PORT[,HOST:PORT…][/ROOT][?port=N] "+
		"or etcd://HOST:PORT[,…][/ROOT][?port=N] into the config (repeatable; ROOT default /dubbo; port: where the services "+
		"made for interfaces without a ServiceEntry listen, default their providers' port)")
}

// newSource makes the source of one registry URL: one case per registry
// kind.
func newSource(t registry.Target, log *zap.Logger) (registry.Source, error) {
	switch t.Scheme {
	case "zookeeper":
		return zookeeper.New(t, log)
	case "etcd":
		return etcd.New(t, log)
	}
	return nil, fmt.Errorf("--registry %s: unsupported scheme %q", t.URL, t.Scheme)
}

// mixer is the mixer of the --registry sources (nil without any), made
// once; set its Publish before running it.
func (r *registryFlags) mixer(log *zap.Logger, debounce time.Duration) (*registry.Mixer, error) {
	if len(r.urls) == 0 || r.m != nil {
		return r.m, nil
	}
	log = log.Named("registry")
	m := &registry.Mixer{Debounce: debounce, Log: log, Metrics: registry.NewMetrics(), ListenPorts: map[string]int{}}
	seen := map[string]bool{}
	for _, u := range r.urls {
		t, err := registry.ParseTarget(u)
		if err != nil {
			return nil, fmt.Errorf("--registry: %w", err)
		}
		if seen[t.URL] {
			continue
		}
		seen[t.URL] = true
		src, err := newSource(t, log)
		if err != nil {
			return nil, err
		}
		m.Sources = append(m.Sources, src)
		if t.Port != 0 {
			m.ListenPorts[t.URL] = t.Port
		}
	}
	r.m = m
	return m, nil
}

// status is what the registries say of the ServiceEntries they feed, for
// the Kubernetes source's status (nil without --registry); wrap then
// merges with the same mixer.
func (r *registryFlags) status(log *zap.Logger, debounce time.Duration) (kube.RegistryStatus, error) {
	m, err := r.mixer(log, debounce)
	if err != nil || m == nil {
		return nil, err
	}
	return m, nil
}

// wrap is src with the registries' providers merged into each Input it
// publishes (src itself without --registry), and the series to register.
func (r *registryFlags) wrap(src source, log *zap.Logger, debounce time.Duration) (source, []prometheus.Collector, error) {
	m, err := r.mixer(log, debounce)
	if err != nil || m == nil {
		return src, nil, err
	}
	return func(ctx context.Context, publish func(*translate.Input)) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		m.Publish = func(in *translate.Input) error { publish(in); return nil }
		mixed := make(chan error, 1)
		go func() { mixed <- m.Run(ctx) }()
		err := src(ctx, func(in *translate.Input) { _ = m.SetBase(in) })
		cancel()
		if merr := <-mixed; err == nil {
			err = merr
		}
		return err
	}, m.Metrics.Collectors(), nil
}

// wrapApply is `metamesh run`'s apply with the registries' providers
// merged into each config (apply itself without --registry). The mixer
// runs until ctx ends; its series go to reg.
func (r *registryFlags) wrapApply(ctx context.Context, log *zap.Logger, debounce time.Duration, reg prometheus.Registerer, apply func(*file.Config) error) (func(*file.Config) error, error) {
	m, err := r.mixer(log, debounce)
	if err != nil || m == nil {
		return apply, err
	}
	for _, c := range m.Metrics.Collectors() {
		reg.MustRegister(c)
	}
	var sources atomic.Pointer[map[string]string]
	m.Publish = func(in *translate.Input) error {
		cfg := &file.Config{ServiceEntries: in.ServiceEntries, DestinationPolicies: in.DestinationPolicies,
			MetaRouters: in.MetaRouters, ApplicationProtocols: in.ApplicationProtocols, Sources: map[string]string{}}
		for k, v := range *sources.Load() {
			cfg.Sources[k] = v
		}
		for _, se := range in.ServiceEntries {
			key := translate.Key("ServiceEntry", se.Namespace, se.Name)
			if _, ok := cfg.Sources[key]; !ok {
				cfg.Sources[key] = "registry " + se.Annotations[registry.RegistryAnnotation]
			}
		}
		return apply(cfg)
	}
	go func() {
		if err := m.Run(ctx); err != nil {
			log.Error("registries stopped", zap.Error(err))
		}
	}()
	return func(cfg *file.Config) error {
		sources.Store(&cfg.Sources)
		return m.SetBase(&translate.Input{ServiceEntries: cfg.ServiceEntries, DestinationPolicies: cfg.DestinationPolicies,
			MetaRouters: cfg.MetaRouters, ApplicationProtocols: cfg.ApplicationProtocols})
	}, nil
}
