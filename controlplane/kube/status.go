package kube

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/metamesh/metamesh/controlplane/translate"
	aerakidubbo "github.com/metamesh/metamesh/crds/aeraki/dubbo/v1alpha1"
	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// maxMessage is the API server's limit on a condition's message.
const maxMessage = 32768

// desired is the status an object should have: conditions set, and
// condition types metamesh no longer reports on it removed.
type desired struct {
	generation int64
	conditions translate.Conditions
	drop       []string
}

// statusWriter writes the translation's conditions onto the objects they
// are about. Every replica runs it, but only the leader translates for
// status and writes: reconcilers return at once on the others.
type statusWriter struct {
	client     client.Client // reads from the cache, writes to the API server
	translate  translate.Options
	log        logr.Logger
	registries RegistryStatus // nil without registries

	mu      sync.Mutex
	snap    *snapshot
	leading bool
	queues  map[string]workqueue.TypedRateLimitingInterface[reconcile.Request] // by kind
	logged  map[string]string                                                  // translate key → last logged message
	// translated is the status of every object by the leader's last
	// translation, before the registries' conditions.
	translated map[objectID]desired

	// want is the status of every object, for the leader's last snapshot.
	want atomic.Pointer[map[objectID]desired]
}

// update takes a new snapshot.
func (w *statusWriter) update(s *snapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.snap = s
	w.refresh()
}

// setLeading records whether this replica leads.
func (w *statusWriter) setLeading(leading bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.leading = leading
	if leading {
		w.refresh()
	} else {
		w.want.Store(nil)
	}
}

// addQueue is told the work queue of a kind's reconciler when it starts.
func (w *statusWriter) addQueue(kind string, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queues[kind] = q
	w.enqueue(kind)
}

// refresh translates the snapshot when leading, and queues every object
// for a status check. Called with w.mu held.
func (w *statusWriter) refresh() {
	if !w.leading || w.snap == nil {
		return
	}
	out := translate.Translate(w.snap.input, w.translate)
	want := map[objectID]desired{}
	for id, conds := range w.snap.refused {
		want[id] = desired{generation: w.snap.generations[id], conditions: conds}
	}
	for key, conds := range out.Status {
		id, ok := w.snap.origins[key]
		if !ok {
			w.logService(key, conds) // a ServiceEntry made from a Service
			continue
		}
		want[id] = desired{generation: w.snap.generations[id], conditions: conds}
	}
	w.translated = want
	w.store()
	for kind := range w.queues {
		w.enqueue(kind)
	}
}

// store puts the translated status with the registries' conditions in
// force. Called with w.mu held.
func (w *statusWriter) store() {
	var conds map[string]metav1.Condition
	if w.registries != nil {
		conds = w.registries.RegistryConditions()
	}
	want := withRegistries(w.translated, w.snap.origins, conds)
	w.want.Store(&want)
}

// registriesChanged applies the registries' new conditions and queues
// every ServiceEntry for a status check.
func (w *statusWriter) registriesChanged() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.leading || w.translated == nil {
		return
	}
	w.store()
	w.enqueue(kindOf(&v1alpha1.ServiceEntry{}))
}

// enqueue queues every object of kind that has a desired status. Called
// with w.mu held.
func (w *statusWriter) enqueue(kind string) {
	want, q := w.want.Load(), w.queues[kind]
	if want == nil || q == nil {
		return
	}
	for id := range *want {
		if id.kind == kind {
			q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: id.namespace, Name: id.name}})
		}
	}
}

// logService logs, once per change, why a Service's ServiceEntry is not
// (fully) in force: it has no status to write it on.
func (w *statusWriter) logService(key string, conds translate.Conditions) {
	msg := ""
	for _, c := range conds {
		if c.Status != metav1.ConditionTrue {
			msg += c.Type + "=" + string(c.Status) + " " + c.Reason + ": " + c.Message + "; "
		}
	}
	if w.logged[key] == msg {
		return
	}
	w.logged[key] = msg
	if msg != "" {
		w.log.Info("Service not fully translated", "service", key, "conditions", strings.TrimSuffix(msg, "; "))
	}
}

// reconciler writes the status of one kind.
type reconciler struct {
	w      *statusWriter
	kind   string
	newObj func() client.Object
}

// Reconcile writes the desired conditions onto the object when they differ
// from its status. It does nothing on a replica that doesn't lead, and for
// an object newer than the last translation (the next one queues it again).
func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	want := r.w.want.Load()
	if want == nil {
		return reconcile.Result{}, nil
	}
	d, ok := (*want)[objectID{r.kind, req.Namespace, req.Name}]
	if !ok {
		return reconcile.Result{}, nil
	}
	obj := r.newObj()
	if err := r.w.client.Get(ctx, req.NamespacedName, obj); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if obj.GetGeneration() != d.generation {
		return reconcile.Result{}, nil
	}
	st := statusOf(obj)
	next := nextStatus(st, d)
	if equality.Semantic.DeepEqual(*st, next) {
		return reconcile.Result{}, nil
	}
	base := obj.DeepCopyObject().(client.Object)
	*st = next
	return reconcile.Result{}, r.w.client.Status().Patch(ctx, obj, client.MergeFrom(base))
}

// nextStatus is cur updated with d: condition transition times move only
// when a condition's status changes.
func nextStatus(cur *v1alpha1.Status, d desired) v1alpha1.Status {
	next := *cur.DeepCopy()
	next.ObservedGeneration = d.generation
	for _, c := range d.conditions {
		c.ObservedGeneration = d.generation
		if len(c.Message) > maxMessage {
			c.Message = strings.ToValidUTF8(c.Message[:maxMessage-3], "") + "..."
		}
		meta.SetStatusCondition(&next.Conditions, c)
	}
	for _, typ := range d.drop {
		meta.RemoveStatusCondition(&next.Conditions, typ)
	}
	return next
}

// statusOf returns the status of a kind metamesh writes status on.
func statusOf(obj client.Object) *v1alpha1.Status {
	switch o := obj.(type) {
	case *v1alpha1.ServiceEntry:
		return &o.Status
	case *v1alpha1.DestinationPolicy:
		return &o.Status
	case *v1alpha1.MetaRouter:
		return &o.Status
	case *v1alpha1.ApplicationProtocol:
		return &o.Status
	case *v1alpha1.Sidecar:
		return &o.Status
	case *aeraki.MetaRouter:
		return &o.Status
	case *aeraki.ApplicationProtocol:
		return &o.Status
	case *v1alpha1.AuthorizationPolicy:
		return &o.Status
	case *aerakidubbo.DubboAuthorizationPolicy:
		return &o.Status
	}
	panic("kube: no status on " + kindOf(obj))
}
