// Package pipeline is the config path of `metamesh run` and `metamesh
// controlplane`, one for both: a source (a config folder or a Kubernetes
// cluster) publishes complete sets of objects, the providers of Dubbo
// registries are merged in when there are any, the set is translated
// (controlplane/translate, pure) and handed to the sinks in order: the ADS
// server, and in `metamesh run` the in-process proxy before it. Every
// translation is measured (metamesh_controlplane_translation_duration_seconds,
// metamesh_controlplane_objects) and the conditions of the objects it did
// not fully accept are logged, the same way in both commands.
//
// The pipeline starts nothing itself: Run is a runnable, as are the
// registries' Mixer.Run and the ADS server's Run, and the command runs
// them together (see docs/xds.md, "One pipeline").
package pipeline

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/registry"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/controlplane/xds"
)

// Objects is one complete set of config objects from a source.
type Objects struct {
	// Input is the objects; read-only once published.
	Input *translate.Input
	// Origins maps an object's translate.Key to where it was read, for
	// logs ("se.yaml", "all.yaml:2"); nil when the key names it well
	// enough (Kubernetes).
	Origins map[string]string
}

// Source feeds a pipeline. It runs until ctx ends, calling publish with
// each new, complete set of objects (one call at a time), and returns nil
// then; it returns an error only when it can't run at all. publish returns
// the error of the sink that refused the set.
type Source func(ctx context.Context, publish func(*Objects) error) error

// Sink puts a translated set in force (the ADS server, the in-process
// proxy), or returns why it refused it. It must not change out.
type Sink func(out *translate.Output) error

// Options configure a Pipeline.
type Options struct {
	// Source is where the objects come from: Folder or Kubernetes.
	Source Source
	// Registries, if not nil, merges the providers of Dubbo registries
	// into every set the source publishes. New sets its Publish and
	// registers its Metrics; run it beside the pipeline.
	Registries *registry.Mixer
	// Translate are the translation options.
	Translate translate.Options
	// Sinks get each translated set, in order; a sink that refuses it
	// stops it from reaching the ones after.
	Sinks []Sink
	// Log gets a line per condition not True (nop if nil).
	Log *zap.Logger
	// Registerer gets the translation series and the registries' (a new
	// registry if nil).
	Registerer prometheus.Registerer
}

// Pipeline is a source → translate → sinks path. Make it with New; Run
// runs it.
type Pipeline struct {
	o       Options
	metrics *metrics
	// base is the source's last set, which the registries' own pushes (a
	// provider came or went) are merged into.
	base atomic.Pointer[Objects]
}

// New returns the pipeline o describes; it starts nothing.
func New(o Options) *Pipeline {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	p := &Pipeline{o: o, metrics: newMetrics(o.Registerer)}
	if o.Registries != nil {
		o.Registries.Publish = p.merged
		if o.Registries.Metrics != nil {
			o.Registerer.MustRegister(o.Registries.Metrics.Collectors()...)
		}
	}
	return p
}

// ToADS is the sink that hands each set's views to the ADS server, which
// pushes each proxy its namespace's after its debounce (docs/scoping.md).
func ToADS(srv *xds.Server) Sink {
	return func(out *translate.Output) error {
		srv.UpdateViews(out.Views)
		return nil
	}
}

// Run runs the source through the pipeline until ctx ends and returns the
// source's error.
func (p *Pipeline) Run(ctx context.Context) error {
	return p.o.Source(ctx, p.publish)
}

// publish takes a set from the source: through the registries when there
// are any, straight to apply otherwise.
func (p *Pipeline) publish(objs *Objects) error {
	if p.o.Registries == nil {
		return p.apply(objs)
	}
	// Stored before SetBase: a registry push between the two takes its
	// objects' origins from this set, for its log lines only.
	p.base.Store(objs)
	return p.o.Registries.SetBase(objs.Input)
}

// merged is the registries' Publish: the source's last set with the
// providers merged in.
func (p *Pipeline) merged(in *translate.Input) error {
	return p.apply(&Objects{Input: in, Origins: registryOrigins(in, p.base.Load())})
}

// apply translates objs, records and logs the translation, and hands the
// resources to the sinks.
func (p *Pipeline) apply(objs *Objects) error {
	start := time.Now()
	out := translate.Translate(objs.Input, p.o.Translate)
	p.metrics.observe(out, time.Since(start))
	logConditions(p.o.Log, out, objs.Origins)
	for _, sink := range p.o.Sinks {
		if err := sink(out); err != nil {
			return err
		}
	}
	return nil
}
