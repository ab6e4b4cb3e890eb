package kube

import (
	"context"
	"errors"
	"reflect"
	"time"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/metamesh/metamesh/controlplane/translate"
)

// source rebuilds the input from the cache after each burst of changes.
type source struct {
	cache   cache.Cache
	opts    *Options
	publish func(*translate.Input)
	status  *statusWriter
	changed chan struct{} // capacity 1: a pending change
}

// handler pokes the source on any change of a watched object.
func (s *source) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { s.poke() },
		UpdateFunc: func(any, any) { s.poke() },
		DeleteFunc: func(any) { s.poke() },
	}
}

func (s *source) poke() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Start waits for the caches, then rebuilds the input after each burst of
// changes: it publishes an input that differs from the last one, and hands
// the status writer every snapshot that differs (an object's generation or
// refusal can change without the input changing).
func (s *source) Start(ctx context.Context) error {
	if !s.cache.WaitForCacheSync(ctx) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("kube: caches did not sync")
	}
	var last *snapshot
	for {
		snap, err := read(ctx, s.cache, s.opts.ClusterDomain)
		if err != nil {
			return err
		}
		if last == nil || !reflect.DeepEqual(snap.input, last.input) {
			in := snap.input
			s.opts.Logger.Info("publishing", "serviceEntries", len(in.ServiceEntries), "destinationPolicies", len(in.DestinationPolicies),
				"metaRouters", len(in.MetaRouters), "applicationProtocols", len(in.ApplicationProtocols),
				"authorizationPolicies", len(in.AuthorizationPolicies), "refused", len(snap.refused))
			s.publish(in)
		}
		if last == nil || !reflect.DeepEqual(snap, last) {
			s.status.update(snap)
		}
		last = snap
		if !s.settle(ctx) {
			return nil
		}
	}
}

// settle waits for a change, then until no other change came for
// Debounce, or MaxDelay passed. It reports false when ctx is done.
func (s *source) settle(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-s.changed:
	}
	quiet, deadline := time.NewTimer(s.opts.Debounce), time.NewTimer(s.opts.MaxDelay)
	defer quiet.Stop()
	defer deadline.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-s.changed:
			quiet.Reset(s.opts.Debounce)
		case <-quiet.C:
			return true
		case <-deadline.C:
			return true
		}
	}
}

// NeedLeaderElection tells the manager to run the source on every replica.
func (s *source) NeedLeaderElection() bool { return false }
