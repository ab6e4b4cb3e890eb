package kube

import (
	"context"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// RegistryStatus is what the Dubbo registries merged into the published
// input (controlplane/registry's Mixer) say of the ServiceEntries they
// feed. The status written to the cluster is otherwise computed without
// them.
type RegistryStatus interface {
	// RegistryConditions returns the RegistryReachable condition of each
	// ServiceEntry of the last published input that takes endpoints from a
	// registry, by translate.Key; ObservedGeneration is the ServiceEntry's
	// generation in that input.
	RegistryConditions() map[string]metav1.Condition
	// RegistryChanged receives a value after RegistryConditions changed.
	RegistryChanged() <-chan struct{}
}

// registryWatch applies the registries' conditions again each time they
// change; a runnable of the manager.
type registryWatch struct {
	w   *statusWriter
	reg RegistryStatus
}

func (r registryWatch) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.reg.RegistryChanged():
			r.w.registriesChanged()
		}
	}
}

// withRegistries is want (the translation's) with each ServiceEntry's
// RegistryReachable condition from conds (by translate.Key; origins maps
// keys to objects): added when the registries describe the generation
// want has; dropped from the object when they feed it nothing; left as it
// is while they describe another generation (they catch up with each
// input the source publishes).
func withRegistries(want map[objectID]desired, origins map[string]objectID, conds map[string]metav1.Condition) map[objectID]desired {
	seKind := kindOf(&v1alpha1.ServiceEntry{})
	out := make(map[objectID]desired, len(want))
	for id, d := range want {
		out[id] = d
	}
	for key, id := range origins {
		d, ok := out[id]
		if id.kind != seKind || !ok {
			continue
		}
		c, fed := conds[key]
		switch {
		case !fed:
			d.drop = []string{v1alpha1.ConditionRegistryReachable}
		case c.ObservedGeneration == d.generation:
			d.conditions = append(slices.Clip(d.conditions), c)
		}
		out[id] = d
	}
	return out
}
