package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	metamesh "github.com/metamesh/metamesh/crds/v1alpha1"
)

// ToMetamesh converts a DubboAuthorizationPolicy to metamesh's
// AuthorizationPolicy of the same namespace and name, for the Dubbo
// services of its namespace (protocols: [dubbo]): interfaces become
// services, the rest keeps its name (docs/authorization.md). The error
// names what can't be converted: an action other than ALLOW and DENY, a
// from without a source or a to without an operation. The result is not
// validated; call its Validate.
func (x *DubboAuthorizationPolicy) ToMetamesh() (*metamesh.AuthorizationPolicy, error) {
	var errs field.ErrorList
	p := field.NewPath("spec")
	out := &metamesh.AuthorizationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: metamesh.SchemeGroupVersion.String(), Kind: metamesh.KindAuthorizationPolicy},
		ObjectMeta: *x.ObjectMeta.DeepCopy(),
		Spec:       metamesh.AuthorizationPolicySpec{Protocols: []metamesh.Name{"dubbo"}},
	}
	switch a := metamesh.AuthorizationAction(x.Spec.Action); a {
	case "", metamesh.ActionAllow, metamesh.ActionDeny:
		out.Spec.Action = a
	default:
		errs = append(errs, field.NotSupported(p.Child("action"), x.Spec.Action, []string{"ALLOW", "DENY"}))
	}
	for i, r := range x.Spec.Rules {
		rp := p.Child("rules").Index(i)
		var rule metamesh.AuthorizationRule
		for j, f := range r.From {
			if f.Source == nil {
				errs = append(errs, field.Required(rp.Child("from").Index(j).Child("source"), "a from without a source"))
				continue
			}
			s := f.Source
			rule.From = append(rule.From, metamesh.AuthorizationSource{
				Principals: s.Principals, NotPrincipals: s.NotPrincipals,
				Namespaces: s.Namespaces, NotNamespaces: s.NotNamespaces,
			})
		}
		for j, t := range r.To {
			if t.Operation == nil {
				errs = append(errs, field.Required(rp.Child("to").Index(j).Child("operation"), "a to without an operation"))
				continue
			}
			o := t.Operation
			rule.To = append(rule.To, metamesh.AuthorizationOperation{
				Services: o.Interfaces, NotServices: o.NotInterfaces,
				Methods: o.Methods, NotMethods: o.NotMethods,
			})
		}
		out.Spec.Rules = append(out.Spec.Rules, rule)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s/%s: %w", KindDubboAuthorizationPolicy, x.Name, errs.ToAggregate())
	}
	return out, nil
}
