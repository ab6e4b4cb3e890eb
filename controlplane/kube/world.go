package kube

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/controlplane/translate"
	aerakidubbo "github.com/metamesh/metamesh/crds/aeraki/dubbo/v1alpha1"
	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// objectID names an object metamesh writes status on.
type objectID struct {
	kind      string // group-qualified, as objectKind returns
	namespace string
	name      string
}

// snapshot is one read of the cluster, ready to translate: the input, and
// for status, where each translated object came from and the conditions of
// the objects left out.
type snapshot struct {
	input *translate.Input
	// origins maps a translate.Key to the object it was read from.
	origins map[string]objectID
	// generations holds each object's metadata.generation as read.
	generations map[objectID]int64
	// refused holds the conditions of objects left out of the input.
	refused map[objectID]translate.Conditions
}

// lists are the kinds read from the cache.
type lists struct {
	serviceEntries       v1alpha1.ServiceEntryList
	destinationPolicies  v1alpha1.DestinationPolicyList
	metaRouters          v1alpha1.MetaRouterList
	applicationProtocols v1alpha1.ApplicationProtocolList
	sidecars             v1alpha1.SidecarList
	aerakiRouters        aeraki.MetaRouterList
	aerakiProtocols      aeraki.ApplicationProtocolList
	authzPolicies        v1alpha1.AuthorizationPolicyList
	dubboAuthzPolicies   aerakidubbo.DubboAuthorizationPolicyList
	services             corev1.ServiceList
	slices               discoveryv1.EndpointSliceList
	pods                 corev1.PodList
}

// read lists every watched kind from r and builds a snapshot.
func read(ctx context.Context, r client.Reader, domain string) (*snapshot, error) {
	var l lists
	for _, list := range []client.ObjectList{&l.serviceEntries, &l.destinationPolicies, &l.metaRouters, &l.applicationProtocols, &l.sidecars,
		&l.aerakiRouters, &l.aerakiProtocols, &l.authzPolicies, &l.dubboAuthzPolicies, &l.services, &l.slices, &l.pods} {
		if err := r.List(ctx, list); err != nil {
			return nil, fmt.Errorf("kube: list %T: %w", list, err)
		}
	}
	return build(&l, domain), nil
}

// build turns the lists into a snapshot. Every object is validated as file
// mode does (the API server checked the schema already, but Aeraki's kinds
// are converted first, and a CRD may be older than this binary); an object
// that fails is left out with Accepted=False. Each list of the input is in
// (namespace, name) order, so equal clusters give equal snapshots; objects
// keep their creationTimestamp, by which the translation settles conflicts.
func build(l *lists, domain string) *snapshot {
	s := &snapshot{input: &translate.Input{}, origins: map[string]objectID{}, generations: map[objectID]int64{}, refused: map[objectID]translate.Conditions{}}
	in := s.input
	// An Aeraki object may have the key of a metamesh one (an Aeraki
	// ApplicationProtocol is named by its protocol): taken oldest first,
	// the oldest keeps it and the newer is refused.
	var protocols, routers, policies []client.Object
	for i := range l.applicationProtocols.Items {
		protocols = append(protocols, &l.applicationProtocols.Items[i])
	}
	for i := range l.aerakiProtocols.Items {
		protocols = append(protocols, &l.aerakiProtocols.Items[i])
	}
	for _, src := range oldestFirst(protocols) {
		switch o := src.(type) {
		case *v1alpha1.ApplicationProtocol:
			if s.add(o, v1alpha1.KindApplicationProtocol, o) {
				in.ApplicationProtocols = append(in.ApplicationProtocols, o)
			}
		case *aeraki.ApplicationProtocol:
			if c, ok := addAeraki(s, o, o.ToMetamesh, v1alpha1.KindApplicationProtocol); ok {
				in.ApplicationProtocols = append(in.ApplicationProtocols, c)
			}
		}
	}
	for i := range l.serviceEntries.Items {
		if o := &l.serviceEntries.Items[i]; s.add(o, v1alpha1.KindServiceEntry, o) {
			in.ServiceEntries = append(in.ServiceEntries, o)
		}
	}
	for i := range l.destinationPolicies.Items {
		if o := &l.destinationPolicies.Items[i]; s.add(o, v1alpha1.KindDestinationPolicy, o) {
			in.DestinationPolicies = append(in.DestinationPolicies, o)
		}
	}
	for i := range l.metaRouters.Items {
		routers = append(routers, &l.metaRouters.Items[i])
	}
	for i := range l.aerakiRouters.Items {
		routers = append(routers, &l.aerakiRouters.Items[i])
	}
	for _, src := range oldestFirst(routers) {
		switch o := src.(type) {
		case *v1alpha1.MetaRouter:
			if s.add(o, v1alpha1.KindMetaRouter, o) {
				in.MetaRouters = append(in.MetaRouters, o)
			}
		case *aeraki.MetaRouter:
			if c, ok := addAeraki(s, o, o.ToMetamesh, v1alpha1.KindMetaRouter); ok {
				in.MetaRouters = append(in.MetaRouters, c)
			}
		}
	}
	for i := range l.sidecars.Items {
		if o := &l.sidecars.Items[i]; s.add(o, v1alpha1.KindSidecar, o) {
			in.Sidecars = append(in.Sidecars, o)
		}
	}
	for i := range l.authzPolicies.Items {
		policies = append(policies, &l.authzPolicies.Items[i])
	}
	for i := range l.dubboAuthzPolicies.Items {
		policies = append(policies, &l.dubboAuthzPolicies.Items[i])
	}
	for _, src := range oldestFirst(policies) {
		switch o := src.(type) {
		case *v1alpha1.AuthorizationPolicy:
			if s.add(o, v1alpha1.KindAuthorizationPolicy, o) {
				in.AuthorizationPolicies = append(in.AuthorizationPolicies, o)
			}
		case *aerakidubbo.DubboAuthorizationPolicy:
			if c, ok := addAeraki(s, o, o.ToMetamesh, v1alpha1.KindAuthorizationPolicy); ok {
				in.AuthorizationPolicies = append(in.AuthorizationPolicies, c)
			}
		}
	}
	in.ServiceEntries = append(in.ServiceEntries, services(l, domain, in.ApplicationProtocols, limitServices(in.MetaRouters))...)
	sortObjects(in.ServiceEntries)
	sortObjects(in.DestinationPolicies)
	sortObjects(in.MetaRouters)
	sortObjects(in.ApplicationProtocols)
	sortObjects(in.AuthorizationPolicies)
	sortObjects(in.Sidecars)
	return s
}

// services returns the ServiceEntries made from the Services; limits
// are the host ports global rate limits name (limitServices).
func services(l *lists, domain string, protocols []*v1alpha1.ApplicationProtocol, limits map[hostPort]bool) []*v1alpha1.ServiceEntry {
	w := &serviceWorld{domain: domain, known: map[string]bool{}, slices: map[serviceRef][]*discoveryv1.EndpointSlice{}, pods: map[serviceRef]*corev1.Pod{},
		limits: limits}
	for _, p := range builtinProtocols {
		w.known[p] = true
	}
	for _, ap := range protocols {
		w.known[ap.Name] = true
	}
	for i := range l.slices.Items {
		es := &l.slices.Items[i]
		if svc := es.Labels[discoveryv1.LabelServiceName]; svc != "" {
			ref := serviceRef{es.Namespace, svc}
			w.slices[ref] = append(w.slices[ref], es)
		}
	}
	for i := range l.pods.Items {
		p := &l.pods.Items[i]
		w.pods[serviceRef{p.Namespace, p.Name}] = p
	}
	var out []*v1alpha1.ServiceEntry
	for i := range l.services.Items {
		if se := w.serviceEntry(&l.services.Items[i]); se != nil {
			out = append(out, se)
		}
	}
	return out
}

// validated is one of metamesh's kinds.
type validated interface {
	client.Object
	Validate() field.ErrorList
}

// add records obj, read from src (obj itself, or the Aeraki object it was
// converted from), as the translate kind: it reports false, with a refusal
// on src, when obj is invalid. obj's metadata is reduced to what the
// translation reads and its status cleared, so that a status write or a
// resync doesn't make the snapshot differ.
func (s *snapshot) add(src client.Object, kind string, obj validated) bool {
	id := idOf(src)
	s.generations[id] = src.GetGeneration()
	cleanMeta(obj)
	*statusOf(obj) = v1alpha1.Status{}
	if errs := obj.Validate(); len(errs) > 0 {
		s.refuse(id, v1alpha1.ReasonInvalid, errs.ToAggregate().Error())
		return false
	}
	key := translate.Key(kind, obj.GetNamespace(), obj.GetName())
	if other, taken := s.origins[key]; taken {
		s.refuse(id, v1alpha1.ReasonConflict, fmt.Sprintf("%s %s is already defined by %s", kind, displayName(obj), other))
		return false
	}
	s.origins[key] = id
	return true
}

// addAeraki converts an Aeraki object and adds the result.
func addAeraki[M validated](s *snapshot, src client.Object, convert func() (M, error), kind string) (M, bool) {
	out, err := convert()
	if err != nil {
		id := idOf(src)
		s.generations[id] = src.GetGeneration()
		s.refuse(id, v1alpha1.ReasonInvalid, err.Error())
		return out, false
	}
	return out, s.add(src, kind, out)
}

func (s *snapshot) refuse(id objectID, reason, msg string) {
	s.refused[id] = translate.Conditions{
		{Type: v1alpha1.ConditionAccepted, Status: metav1.ConditionFalse, Reason: reason, Message: msg},
		{Type: v1alpha1.ConditionResolvedRefs, Status: metav1.ConditionUnknown, Reason: reason, Message: "not resolved: the object is not accepted"},
	}
}

// cleanMeta keeps only the metadata the translation reads: the
// creationTimestamp decides which of two conflicting objects wins.
func cleanMeta(obj client.Object) {
	m := metav1.ObjectMeta{Namespace: obj.GetNamespace(), Name: obj.GetName(), Generation: obj.GetGeneration(),
		CreationTimestamp: obj.GetCreationTimestamp()}
	switch o := obj.(type) {
	case *v1alpha1.ServiceEntry:
		o.ObjectMeta = m
	case *v1alpha1.DestinationPolicy:
		o.ObjectMeta = m
	case *v1alpha1.MetaRouter:
		o.ObjectMeta = m
	case *v1alpha1.ApplicationProtocol:
		o.ObjectMeta = m
	case *v1alpha1.Sidecar:
		o.ObjectMeta = m
	case *v1alpha1.AuthorizationPolicy:
		o.ObjectMeta = m
	}
}

// String reads "MetaRouter.metamesh.io default/name".
func (id objectID) String() string { return id.kind + " " + qualified(id.namespace, id.name) }

func displayName(obj client.Object) string { return qualified(obj.GetNamespace(), obj.GetName()) }

func qualified(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// oldestFirst sorts objs as translate.ByAge does; stable, so that of a
// metamesh and an Aeraki object of the same age and name, the metamesh one
// (listed first) is kept.
func oldestFirst(objs []client.Object) []client.Object {
	slices.SortStableFunc(objs, func(a, b client.Object) int {
		at, bt := a.GetCreationTimestamp(), b.GetCreationTimestamp()
		return cmp.Or(at.Compare(bt.Time), cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
	return objs
}

func sortObjects[T client.Object](objs []T) {
	slices.SortFunc(objs, func(a, b T) int {
		return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
	})
}
