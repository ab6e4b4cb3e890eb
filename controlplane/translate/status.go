package translate

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// Conditions are the status conditions of one object: Accepted and
// ResolvedRefs, each with a reason and a message.
type Conditions []metav1.Condition

// Get returns the condition of type typ, or nil.
func (c Conditions) Get(typ string) *metav1.Condition { return meta.FindStatusCondition(c, typ) }

// status accumulates the findings about one object.
type status struct {
	acceptedReason, refsReason string
	accepted, refs, notes      []string
}

func (t *translation) st(key string) *status {
	if t.status == nil {
		t.status = map[string]*status{}
	}
	s, ok := t.status[key]
	if !ok {
		s = &status{}
		t.status[key] = s
	}
	return s
}

// reject records that (part of) an object was not accepted.
func (t *translation) reject(key, reason, msg string) {
	s := t.st(key)
	if s.acceptedReason == "" {
		s.acceptedReason = reason
	}
	s.accepted = append(s.accepted, msg)
}

// unresolved records a reference to something that does not exist, once
// (several views may find it).
func (t *translation) unresolved(key, reason, msg string) {
	s := t.st(key)
	if slices.Contains(s.refs, msg) {
		return
	}
	if s.refsReason == "" {
		s.refsReason = reason
	}
	s.refs = append(s.refs, msg)
}

// note records a fact the operator should see on an accepted object.
func (t *translation) note(key, msg string) { s := t.st(key); s.notes = append(s.notes, msg) }

// conditions renders the findings of every object seen.
func (t *translation) conditions() {
	for key, s := range t.status {
		accepted := metav1.Condition{Type: v1alpha1.ConditionAccepted, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonAccepted, Message: "accepted"}
		if len(s.accepted) > 0 {
			accepted.Status, accepted.Reason, accepted.Message = metav1.ConditionFalse, s.acceptedReason, strings.Join(s.accepted, "; ")
		}
		if len(s.notes) > 0 {
			accepted.Message += "; " + strings.Join(s.notes, "; ")
		}
		refs := metav1.Condition{Type: v1alpha1.ConditionResolvedRefs, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonResolvedRefs, Message: "all references resolved"}
		if len(s.refs) > 0 {
			refs.Status, refs.Reason, refs.Message = metav1.ConditionFalse, s.refsReason, strings.Join(s.refs, "; ")
		}
		t.out.Status[key] = Conditions{accepted, refs}
	}
}
