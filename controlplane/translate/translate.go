// Package translate is the pure translation from metamesh's config kinds
// (ServiceEntry, DestinationPolicy, MetaRouter, ApplicationProtocol) to the
// xDS resources a proxy applies. It never fails as a whole: an object it
// can't honour gets a status condition saying why, and the rest is
// translated.
package translate

import (
	"sort"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/proxy/api"
	"github.com/metamesh/metamesh/proxy/snapshot"
)

// Input is the set of objects to translate.
type Input struct {
	ServiceEntries       []*v1alpha1.ServiceEntry
	DestinationPolicies  []*v1alpha1.DestinationPolicy
	MetaRouters          []*v1alpha1.MetaRouter
	ApplicationProtocols []*v1alpha1.ApplicationProtocol
}

// Options are the translation settings that don't come from objects.
type Options struct {
	// ListenAddress is the address listeners bind (default 0.0.0.0).
	ListenAddress string
	// KnownCodec reports whether a codec is built in; nil accepts any.
	KnownCodec func(name string) bool
	// AccessLog is every listener's access log (nil: off).
	AccessLog *api.AccessLog
}

// Output is the translation of an Input.
type Output struct {
	Resources *snapshot.Resources
	// Status holds the conditions of every input object, by Key.
	Status map[string]Conditions
}

// Key names an object in Output.Status: "Kind/namespace/name" (cluster-
// scoped kinds have an empty namespace).
func Key(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }

// Translate turns in into xDS resources and per-object status. It is
// deterministic: the same input gives the same output, whatever the order
// of the slices.
func Translate(in *Input, opts Options) *Output {
	if opts.ListenAddress == "" {
		opts.ListenAddress = "0.0.0.0"
	}
	t := &translation{in: sorted(in), opts: opts, out: &Output{Resources: &snapshot.Resources{}, Status: map[string]Conditions{}}}
	t.registerProtocols()
	t.registerServices()
	t.attachPolicies()
	t.attachRouters()
	t.emit()
	return t.out
}

// sorted returns a copy of in with every list in (namespace, name) order,
// so "first one wins" conflicts resolve the same way every time.
func sorted(in *Input) *Input {
	out := *in
	out.ServiceEntries = append([]*v1alpha1.ServiceEntry(nil), in.ServiceEntries...)
	sort.Slice(out.ServiceEntries, func(i, j int) bool {
		return less(&out.ServiceEntries[i].ObjectMeta, &out.ServiceEntries[j].ObjectMeta)
	})
	out.DestinationPolicies = append([]*v1alpha1.DestinationPolicy(nil), in.DestinationPolicies...)
	sort.Slice(out.DestinationPolicies, func(i, j int) bool {
		return less(&out.DestinationPolicies[i].ObjectMeta, &out.DestinationPolicies[j].ObjectMeta)
	})
	out.MetaRouters = append([]*v1alpha1.MetaRouter(nil), in.MetaRouters...)
	sort.Slice(out.MetaRouters, func(i, j int) bool {
		return less(&out.MetaRouters[i].ObjectMeta, &out.MetaRouters[j].ObjectMeta)
	})
	out.ApplicationProtocols = append([]*v1alpha1.ApplicationProtocol(nil), in.ApplicationProtocols...)
	sort.Slice(out.ApplicationProtocols, func(i, j int) bool {
		return less(&out.ApplicationProtocols[i].ObjectMeta, &out.ApplicationProtocols[j].ObjectMeta)
	})
	return &out
}
