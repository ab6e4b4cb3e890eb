package file

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// definition is one valid object of the folder, not yet in the Config:
// two may define the same key, and one may conflict with another.
type definition struct {
	at     Problem // where it is, for problems about it
	source string  // its Sources entry
	obj    validated
	add    func(*Config)
	age    age
}

// key is d's Key, by the kind of its object: a converted Aeraki object
// (a DubboAuthorizationPolicy) is keyed as the metamesh kind it became.
func (d *definition) key() string {
	kind := d.at.Kind
	if o, ok := d.obj.(runtime.Object); ok && o.GetObjectKind().GroupVersionKind().Kind != "" {
		kind = o.GetObjectKind().GroupVersionKind().Kind
	}
	return Key(kind, d.obj.GetNamespace(), d.obj.GetName())
}

// age orders objects oldest first, so that the older of two conflicting
// objects is in force and the newer one is blamed. File mode has no API
// server to stamp creation times, so an object is, in this order:
//   - older when the last config in force holds it as it is (an edit that
//     adds or changes an object is what brings a conflict in);
//   - older by its metadata.creationTimestamp, when written, else by its
//     file's modification time (a file just added is the newest);
//   - then in namespace/name order, then file and document order.
type age struct {
	changed bool // not in the last good config as it is
	when    time.Time
}

func (a age) compare(b age) int {
	if a.changed != b.changed {
		if a.changed {
			return 1
		}
		return -1
	}
	return a.when.Compare(b.when)
}

// settle puts the oldest definition of each key in the Config and reports
// the others as duplicates, then reports every translation conflict
// (host, port, policy, router, protocol name) on the newer object. prev is
// the config in force, nil at start and for `metamesh validate`.
func (l *loader) settle(prev *Config) {
	held := objectsOf(prev)
	for _, d := range l.defs {
		key := d.key()
		d.age = age{changed: !reflect.DeepEqual(held[key], d.obj), when: l.modTimes[d.at.File]}
		if ts := d.obj.GetCreationTimestamp(); !ts.IsZero() {
			d.age.when = ts.Time
		}
	}
	slices.SortStableFunc(l.defs, func(a, b *definition) int {
		return cmp.Or(a.age.compare(b.age), cmp.Compare(a.obj.GetNamespace(), b.obj.GetNamespace()),
			cmp.Compare(a.obj.GetName(), b.obj.GetName()), cmp.Compare(a.at.File, b.at.File), cmp.Compare(a.at.Document, b.at.Document))
	})
	defined := map[string]*definition{}
	for _, d := range l.defs {
		key := d.key()
		if first, dup := defined[key]; dup {
			l.add(d.at, "metadata.name", fmt.Sprintf("Duplicate value: %q: also defined in %s", qualified(d.obj), first.source))
			continue
		}
		defined[key] = d
		d.add(l.cfg)
		l.cfg.Sources[key] = d.source
	}
	if len(l.problems) > 0 {
		return
	}
	older := func(kind string, a, b *metav1.ObjectMeta) int {
		return defined[Key(kind, a.Namespace, a.Name)].age.compare(defined[Key(kind, b.Namespace, b.Name)].age)
	}
	for _, c := range translate.Conflicts(l.cfg.Input(), translate.Options{Older: older}) {
		reason := c.Reason
		if c.Holder != "" {
			reason += ", in " + l.cfg.Sources[c.Holder]
		}
		l.add(defined[c.Key].at, c.Field, reason)
	}
}

// objectsOf indexes the objects of cfg by Key.
func objectsOf(cfg *Config) map[string]any {
	m := map[string]any{}
	if cfg == nil {
		return m
	}
	for _, o := range cfg.ServiceEntries {
		m[Key(v1alpha1.KindServiceEntry, o.Namespace, o.Name)] = o
	}
	for _, o := range cfg.DestinationPolicies {
		m[Key(v1alpha1.KindDestinationPolicy, o.Namespace, o.Name)] = o
	}
	for _, o := range cfg.MetaRouters {
		m[Key(v1alpha1.KindMetaRouter, o.Namespace, o.Name)] = o
	}
	for _, o := range cfg.ApplicationProtocols {
		m[Key(v1alpha1.KindApplicationProtocol, o.Namespace, o.Name)] = o
	}
	for _, o := range cfg.Sidecars {
		m[Key(v1alpha1.KindSidecar, o.Namespace, o.Name)] = o
	}
	for _, o := range cfg.AuthorizationPolicies {
		m[Key(v1alpha1.KindAuthorizationPolicy, o.Namespace, o.Name)] = o
	}
	return m
}

func qualified(obj validated) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns + "/" + obj.GetName()
	}
	return obj.GetName()
}
