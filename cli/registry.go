package cli

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/kube"
	"github.com/metamesh/metamesh/controlplane/pipeline"
	"github.com/metamesh/metamesh/controlplane/registry"
	"github.com/metamesh/metamesh/controlplane/registry/etcd"
	"github.com/metamesh/metamesh/controlplane/registry/zookeeper"
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
// once, for a pipeline (controlplane/pipeline) to publish through.
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
// the Kubernetes source's status (nil without --registry); addPipeline
// then merges with the same mixer.
func (r *registryFlags) status(log *zap.Logger, debounce time.Duration) (kube.RegistryStatus, error) {
	m, err := r.mixer(log, debounce)
	if err != nil || m == nil {
		return nil, err
	}
	return m, nil
}

// addPipeline adds to g the config pipeline o describes, its errors named
// source (the flag of its source), merging the providers of the
// --registry registries, whose mixer runs beside it.
func (r *registryFlags) addPipeline(g *group, log *zap.Logger, debounce time.Duration, source string, o pipeline.Options) error {
	m, err := r.mixer(log, debounce)
	if err != nil {
		return err
	}
	o.Registries = m
	g.add(source, pipeline.New(o).Run)
	if m != nil {
		g.add("--registry", m.Run)
	}
	return nil
}
