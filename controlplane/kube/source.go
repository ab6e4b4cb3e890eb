// Package kube is the Kubernetes config source of the control plane. With
// controller-runtime's cache it watches metamesh's kinds (Sidecar too), Aeraki's
// MetaRouter and ApplicationProtocol, Services, EndpointSlices and Pods
// (metadata only); after each burst of changes it rebuilds the translator's
// input, Services made into ServiceEntries (see HostsAnnotation and
// portProtocol), and publishes it when it changed. Every replica does that;
// the one holding a Lease also translates for status and writes each
// object's Accepted and ResolvedRefs conditions, and a ServiceEntry's
// RegistryReachable when Dubbo registries feed it (Options.Registries),
// when they changed.
package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	crsource "sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/metamesh/metamesh/controlplane/translate"
	aerakidubbo "github.com/metamesh/metamesh/crds/aeraki/dubbo/v1alpha1"
	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// Defaults of Options.
const (
	DefaultClusterDomain    = "cluster.local"
	DefaultDebounce         = 100 * time.Millisecond
	DefaultMaxDelay         = time.Second
	DefaultLeaderElectionID = "metamesh-controlplane"
	DefaultLeaseDuration    = 15 * time.Second
	DefaultRenewDeadline    = 10 * time.Second
	DefaultRetryPeriod      = 2 * time.Second
)

// Options configure Run. The zero value works without leader election.
type Options struct {
	// ClusterDomain is the cluster's DNS domain, which Services' hosts end
	// in (DefaultClusterDomain if empty).
	ClusterDomain string
	// Namespaces limits what is watched (metamesh's namespaced kinds,
	// Aeraki's, Services, EndpointSlices, Pods) to these namespaces; empty
	// watches every namespace. ApplicationProtocol is cluster-scoped and
	// is watched cluster-wide either way.
	Namespaces []string
	// Debounce is the quiet time after a change before the input is rebuilt
	// (DefaultDebounce if zero); MaxDelay bounds the wait under a steady
	// stream of changes (DefaultMaxDelay if zero).
	Debounce, MaxDelay time.Duration

	// LeaderElection makes status writes depend on holding the Lease
	// LeaderElectionNamespace/LeaderElectionID; without it, this replica
	// writes status.
	LeaderElection bool
	// LeaderElectionNamespace is the Lease's namespace (required with
	// LeaderElection; in a Pod, its own namespace).
	LeaderElectionNamespace string
	// LeaderElectionID names the Lease (DefaultLeaderElectionID if empty).
	LeaderElectionID string
	// Identity is this replica's name in the Lease (hostname_uuid if empty).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election
	// (client-go's meaning; the Default… values if zero).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	// Translate are the options status is translated with: the same as the
	// published input is translated with, so both agree.
	Translate translate.Options
	// Logger receives controller-runtime's logs and this package's (none
	// if unset). client-go's leader election logs through klog.
	Logger logr.Logger
	// Setup, if set, is called with the manager before it starts, to add
	// more runnables to it (the sidecar injector's webhook server).
	Setup func(manager.Manager) error
	// Registries, if set, are the Dubbo registries merged into what Run
	// publishes: the ServiceEntries they feed get a RegistryReachable
	// condition. Without, that condition is removed where present.
	Registries RegistryStatus
}

func (o *Options) complete() error {
	if o.ClusterDomain == "" {
		o.ClusterDomain = DefaultClusterDomain
	}
	o.Debounce = cmpOr(o.Debounce, DefaultDebounce)
	o.MaxDelay = cmpOr(o.MaxDelay, DefaultMaxDelay)
	o.LeaseDuration = cmpOr(o.LeaseDuration, DefaultLeaseDuration)
	o.RenewDeadline = cmpOr(o.RenewDeadline, DefaultRenewDeadline)
	o.RetryPeriod = cmpOr(o.RetryPeriod, DefaultRetryPeriod)
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.LeaderElectionID == "" {
		o.LeaderElectionID = DefaultLeaderElectionID
	}
	if o.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("kube: leader election identity: %w", err)
		}
		o.Identity = host + "_" + string(uuid.NewUUID())
	}
	if o.LeaderElection && o.LeaderElectionNamespace == "" {
		return errors.New("kube: leader election needs a namespace for its Lease")
	}
	for _, ns := range o.Namespaces {
		// "" would be controller-runtime's "every namespace": refused
		// rather than silently lifting the limit.
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("kube: namespace %q: %s", ns, strings.Join(errs, "; "))
		}
	}
	return nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// scheme knows every kind the source reads.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme, v1alpha1.AddToScheme, aeraki.AddToScheme, aerakidubbo.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // only on a kind registered twice
		}
	}
	return s
}()

// statusKinds are the kinds metamesh writes status on.
var statusKinds = []func() client.Object{
	func() client.Object { return &v1alpha1.ServiceEntry{} },
	func() client.Object { return &v1alpha1.DestinationPolicy{} },
	func() client.Object { return &v1alpha1.MetaRouter{} },
	func() client.Object { return &v1alpha1.ApplicationProtocol{} },
	func() client.Object { return &v1alpha1.Sidecar{} },
	func() client.Object { return &aeraki.MetaRouter{} },
	func() client.Object { return &aeraki.ApplicationProtocol{} },
	func() client.Object { return &v1alpha1.AuthorizationPolicy{} },
	func() client.Object { return &aerakidubbo.DubboAuthorizationPolicy{} },
}

// watched returns an empty object of every kind the input is built from.
func watched() []client.Object {
	objs := []client.Object{&corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Pod{}}
	for _, newObj := range statusKinds {
		objs = append(objs, newObj())
	}
	return objs
}

// podTransform keeps of a Pod only what the input is built from: its
// name, labels and service account (the cache holds every Pod).
func podTransform(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone
	}
	return &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels},
		Spec: corev1.PodSpec{ServiceAccountName: p.Spec.ServiceAccountName},
	}, nil
}

// kindOf names obj's kind with its group: MetaRouter.metamesh.io.
func kindOf(obj client.Object) string {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		panic(err) // only for a kind missing from scheme
	}
	return gvk.GroupKind().String()
}

func idOf(obj client.Object) objectID {
	return objectID{kind: kindOf(obj), namespace: obj.GetNamespace(), name: obj.GetName()}
}

// Run watches the cluster cfg points at until ctx is done, calling publish
// (from one goroutine, one call at a time) with the first complete input
// once the caches have synced, then with each input that differs from the
// last one. publish must treat the input as read-only. Run returns nil when
// ctx is done, or an error when it can't start (the CRDs missing, say).
func Run(ctx context.Context, cfg *rest.Config, opts Options, publish func(*translate.Input)) error {
	if err := opts.complete(); err != nil {
		return err
	}
	cacheOpts := cache.Options{DefaultTransform: cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{&corev1.Pod{}: {Transform: podTransform}}}
	if len(opts.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range opts.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:  scheme,
		Logger:  opts.Logger,
		Metrics: metricsserver.Options{BindAddress: "0"}, // the control plane serves its own
		Cache:   cacheOpts,
		// Several sources may run in one process (tests).
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return fmt.Errorf("kube: %w", err)
	}
	w := &statusWriter{client: mgr.GetClient(), translate: opts.Translate, log: opts.Logger, registries: opts.Registries,
		queues: map[string]workqueue.TypedRateLimitingInterface[reconcile.Request]{}, logged: map[string]string{}}
	src := &source{cache: mgr.GetCache(), opts: &opts, publish: publish, status: w, changed: make(chan struct{}, 1)}
	for _, obj := range watched() {
		inf, err := mgr.GetCache().GetInformer(ctx, obj)
		if err == nil {
			_, err = inf.AddEventHandler(src.handler())
		}
		if err != nil {
			return fmt.Errorf("kube: watch %s (are metamesh's CRDs installed?): %w", kindOf(obj), err)
		}
	}
	for _, newObj := range statusKinds {
		kind := kindOf(newObj())
		err := builder.ControllerManagedBy(mgr).
			Named(strings.ToLower(kind) + "-status").
			For(newObj()).
			WatchesRawSource(crsource.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
				w.addQueue(kind, q)
				return nil
			})).
			Complete(&reconciler{w: w, kind: kind, newObj: newObj})
		if err != nil {
			return fmt.Errorf("kube: status controller for %s: %w", kind, err)
		}
	}
	if err := mgr.Add(src); err != nil {
		return fmt.Errorf("kube: %w", err)
	}
	if opts.Registries != nil {
		if err := mgr.Add(registryWatch{w: w, reg: opts.Registries}); err != nil {
			return fmt.Errorf("kube: %w", err)
		}
	}
	if opts.LeaderElection {
		e, err := newElector(cfg, &opts, w)
		if err != nil {
			return err
		}
		if err := mgr.Add(e); err != nil {
			return fmt.Errorf("kube: %w", err)
		}
	} else {
		w.setLeading(true)
	}
	if opts.Setup != nil {
		if err := opts.Setup(mgr); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}
