// Package translate is the pure translation from metamesh's config kinds
// (ServiceEntry, DestinationPolicy, MetaRouter, ApplicationProtocol,
// Sidecar, AuthorizationPolicy) to the xDS resources a proxy applies: the
// whole mesh, and the view of each namespace (docs/scoping.md). It never
// fails as a whole: an object it
// can't honour gets a status condition saying why, and the rest is
// translated.
package translate

import (
	"cmp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// Input is the set of objects to translate.
type Input struct {
	ServiceEntries        []*v1alpha1.ServiceEntry
	DestinationPolicies   []*v1alpha1.DestinationPolicy
	MetaRouters           []*v1alpha1.MetaRouter
	ApplicationProtocols  []*v1alpha1.ApplicationProtocol
	Sidecars              []*v1alpha1.Sidecar
	AuthorizationPolicies []*v1alpha1.AuthorizationPolicy
}

// Options are the translation settings that don't come from objects.
type Options struct {
	// ListenAddress is the address listeners bind (default 0.0.0.0).
	ListenAddress string
	// KnownCodec reports whether a codec is built in; nil accepts any.
	KnownCodec func(name string) bool
	// AccessLog is every listener's access log (nil: off).
	AccessLog *xdsapi.AccessLog
	// CaptureOnly translates for proxies that serve their listeners only
	// through their capture ports (sidecars, docs/mesh-mode.md): listeners
	// are not bound (bind_to_port false), and Thrift or Redis services
	// may share a port number, each told apart by the addresses it is
	// dialed at (its capture destinations name it).
	CaptureOnly bool
	// MTLSMode is the mutual TLS mode between proxies of the services
	// whose DestinationPolicy sets none (default PERMISSIVE;
	// docs/mesh-mode.md#mutual-tls-between-proxies).
	MTLSMode v1alpha1.MTLSMode
	// TrustDomain is that of the workload SPIFFE IDs: a ServiceEntry
	// endpoint's serviceAccount is expected to present
	// spiffe://<TrustDomain>/ns/<namespace>/sa/<it>. Empty: endpoints'
	// service accounts are not looked at.
	TrustDomain string
	// RootNamespace is the namespace whose AuthorizationPolicies are
	// mesh-wide (v1alpha1.RootNamespace if empty; istio-system for a mesh
	// that keeps Aeraki's).
	RootNamespace string
	// Older orders two objects of kind, oldest first, to settle conflicts:
	// the oldest keeps a host, port or protocol name. Nil is ByAge. File
	// mode, whose objects have no creation time, passes its own order.
	Older func(kind string, a, b *metav1.ObjectMeta) int
}

// Output is the translation of an Input.
type Output struct {
	// Resources is the whole mesh: every host, whatever its exportTo,
	// each with its oldest MetaRouter and DestinationPolicy. `metamesh
	// run`'s proxy applies it.
	Resources *xdsapi.Resources
	// Views are what the proxies of each namespace see; views that are
	// the same share one Resources (Resources itself when nothing is
	// scoped).
	Views *xdsapi.Views
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
	t := newTranslation(in, opts)
	t.resolve()
	t.emit()
	return t.out
}

func newTranslation(in *Input, opts Options) *translation {
	return &translation{in: sorted(in, opts), opts: opts, out: &Output{Resources: &xdsapi.Resources{}, Status: map[string]Conditions{}}}
}

// resolve registers protocols and services and attaches what refers to
// them, settling conflicts in the input's order (oldest first).
func (t *translation) resolve() {
	t.registerProtocols()
	t.registerServices()
	t.registerSidecars()
	t.attachPolicies()
	t.settleListenerTLS()
	t.settleMTLS()
	t.attachRouters()
	t.attachAuthorization()
}

// ByAge orders two objects oldest first: by creationTimestamp (as the API
// server sets it, or zero), then namespace/name. It is Istio's rule for
// conflicting objects: the oldest one wins.
func ByAge(a, b *metav1.ObjectMeta) int {
	return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time),
		cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// sorted returns a copy of in with every list oldest first (opts.Older, or
// ByAge), so that the oldest object wins each conflict, whatever the order
// of the slices.
func sorted(in *Input, opts Options) *Input {
	older := func(kind string, a, b *metav1.ObjectMeta) int {
		if opts.Older != nil {
			// Keys are unique, so ByAge breaks any tie left.
			return cmp.Or(opts.Older(kind, a, b), ByAge(a, b))
		}
		return ByAge(a, b)
	}
	out := *in
	out.ServiceEntries = sortedBy(in.ServiceEntries, func(a, b *v1alpha1.ServiceEntry) int {
		return older(v1alpha1.KindServiceEntry, &a.ObjectMeta, &b.ObjectMeta)
	})
	out.DestinationPolicies = sortedBy(in.DestinationPolicies, func(a, b *v1alpha1.DestinationPolicy) int {
		return older(v1alpha1.KindDestinationPolicy, &a.ObjectMeta, &b.ObjectMeta)
	})
	out.MetaRouters = sortedBy(in.MetaRouters, func(a, b *v1alpha1.MetaRouter) int {
		return older(v1alpha1.KindMetaRouter, &a.ObjectMeta, &b.ObjectMeta)
	})
	out.ApplicationProtocols = sortedBy(in.ApplicationProtocols, func(a, b *v1alpha1.ApplicationProtocol) int {
		return older(v1alpha1.KindApplicationProtocol, &a.ObjectMeta, &b.ObjectMeta)
	})
	out.Sidecars = sortedBy(in.Sidecars, func(a, b *v1alpha1.Sidecar) int {
		return older(v1alpha1.KindSidecar, &a.ObjectMeta, &b.ObjectMeta)
	})
	out.AuthorizationPolicies = sortedBy(in.AuthorizationPolicies, func(a, b *v1alpha1.AuthorizationPolicy) int {
		return older(v1alpha1.KindAuthorizationPolicy, &a.ObjectMeta, &b.ObjectMeta)
	})
	return &out
}

func sortedBy[T any](s []T, order func(a, b T) int) []T {
	out := slices.Clone(s)
	slices.SortFunc(out, order)
	return out
}
