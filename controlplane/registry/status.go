package registry

import (
	"reflect"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// conditions are the RegistryReachable conditions of the ServiceEntries of
// base that merged (Merge's Input for base, flagged by flagUnreachable)
// fills from registries, by translate.Key, each observing the
// ServiceEntry's generation in base: True while its registries are
// watched, False with flagUnreachable's message while one is away.
// ServiceEntries made for interfaces are not in base: they have no
// object to report on.
func conditions(base, merged *translate.Input, flagged map[string]string) map[string]metav1.Condition {
	out := map[string]metav1.Condition{}
	// Merge keeps base's ServiceEntries first, in order, then the made ones.
	for _, se := range merged.ServiceEntries[:len(base.ServiceEntries)] {
		regs, ok := se.Annotations[RegistryAnnotation]
		if !ok {
			continue
		}
		key := translate.Key("ServiceEntry", se.Namespace, se.Name)
		c := metav1.Condition{Type: v1alpha1.ConditionRegistryReachable, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonRegistryReachable, ObservedGeneration: se.Generation,
			Message: "endpoints are the providers registered in " + strings.ReplaceAll(regs, ",", ", ")}
		if msg, down := flagged[key]; down {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonRegistryUnreachable, msg
		}
		out[key] = c
	}
	return out
}

// RegistryConditions returns the RegistryReachable condition of each
// ServiceEntry of the last published base that takes endpoints from a
// registry, by translate.Key; ObservedGeneration is the ServiceEntry's
// generation in that base. The map is not to be modified.
func (m *Mixer) RegistryConditions() map[string]metav1.Condition {
	m.init()
	if c := m.conds.Load(); c != nil {
		return *c
	}
	return nil
}

// RegistryChanged receives a value after RegistryConditions changed.
func (m *Mixer) RegistryChanged() <-chan struct{} {
	m.init()
	return m.condsChanged
}

// setConditions records conds and signals RegistryChanged when they
// differ from the last.
func (m *Mixer) setConditions(conds map[string]metav1.Condition) {
	if old := m.conds.Load(); old != nil && reflect.DeepEqual(*old, conds) {
		return
	}
	m.conds.Store(&conds)
	select {
	case m.condsChanged <- struct{}{}:
	default:
	}
}
