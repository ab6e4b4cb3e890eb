package v1alpha1

import (
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits shared with AuthorizationPolicy's markers.
const (
	maxAuthzRules     = 64
	maxAuthzClauses   = 32
	maxAuthzValues    = 64
	maxAuthzProtocols = 16
)

// Validate checks an AuthorizationPolicy as the API server would, and also
// that its patterns, IP blocks and regexes are well formed.
func (x *AuthorizationPolicy) Validate() field.ErrorList {
	errs := validateMeta(&x.ObjectMeta, true)
	s := &x.Spec
	p := field.NewPath("spec")
	if len(s.Hosts) > 0 {
		errs = append(errs, validateHosts(s.Hosts, p.Child("hosts"))...)
	}
	pp := p.Child("protocols")
	if len(s.Protocols) > maxAuthzProtocols {
		errs = append(errs, field.TooMany(pp, len(s.Protocols), maxAuthzProtocols))
	}
	seen := map[Name]bool{}
	for i, n := range s.Protocols {
		errs = append(errs, validateName(n, pp.Index(i))...)
		if seen[n] {
			errs = append(errs, field.Duplicate(pp.Index(i), n))
		}
		seen[n] = true
	}
	switch s.Action {
	case "", ActionAllow, ActionDeny, ActionAudit:
	default:
		errs = append(errs, field.NotSupported(p.Child("action"), s.Action,
			[]AuthorizationAction{ActionAllow, ActionDeny, ActionAudit}))
	}
	rp := p.Child("rules")
	if len(s.Rules) > maxAuthzRules {
		errs = append(errs, field.TooMany(rp, len(s.Rules), maxAuthzRules))
	}
	for i := range s.Rules {
		errs = append(errs, validateAuthzRule(&s.Rules[i], rp.Index(i))...)
	}
	return errs
}

func validateAuthzRule(r *AuthorizationRule, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	fp, tp := p.Child("from"), p.Child("to")
	if len(r.From) > maxAuthzClauses {
		errs = append(errs, field.TooMany(fp, len(r.From), maxAuthzClauses))
	}
	if len(r.To) > maxAuthzClauses {
		errs = append(errs, field.TooMany(tp, len(r.To), maxAuthzClauses))
	}
	for i := range r.From {
		f, ip := &r.From[i], fp.Index(i)
		errs = append(errs, validatePatterns(f.Principals, ip.Child("principals"))...)
		errs = append(errs, validatePatterns(f.NotPrincipals, ip.Child("notPrincipals"))...)
		errs = append(errs, validatePatterns(f.Namespaces, ip.Child("namespaces"))...)
		errs = append(errs, validatePatterns(f.NotNamespaces, ip.Child("notNamespaces"))...)
		errs = append(errs, validateIPBlocks(f.IPBlocks, ip.Child("ipBlocks"))...)
		errs = append(errs, validateIPBlocks(f.NotIPBlocks, ip.Child("notIpBlocks"))...)
	}
	for i := range r.To {
		o, ip := &r.To[i], tp.Index(i)
		errs = append(errs, validatePatterns(o.Services, ip.Child("services"))...)
		errs = append(errs, validatePatterns(o.NotServices, ip.Child("notServices"))...)
		errs = append(errs, validatePatterns(o.Methods, ip.Child("methods"))...)
		errs = append(errs, validatePatterns(o.NotMethods, ip.Child("notMethods"))...)
		errs = append(errs, validateAttributes(o.Attributes, ip.Child("attributes"))...)
		errs = append(errs, validateAttributes(o.NotAttributes, ip.Child("notAttributes"))...)
	}
	return errs
}

// validatePatterns checks Istio-style string patterns: not empty, and a
// '*' only as the whole value, its first or its last character.
func validatePatterns(vs []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(vs) > maxAuthzValues {
		errs = append(errs, field.TooMany(p, len(vs), maxAuthzValues))
	}
	for i, v := range vs {
		switch {
		case v == "":
			errs = append(errs, field.Required(p.Index(i), "an empty pattern matches nothing"))
		case len(v) > maxHostLen:
			errs = append(errs, field.TooLong(p.Index(i), "", maxHostLen))
		case v != "*" && strings.Contains(strings.TrimSuffix(strings.TrimPrefix(v, "*"), "*"), "*"),
			strings.HasPrefix(v, "*") && strings.HasSuffix(v, "*") && v != "*":
			errs = append(errs, field.Invalid(p.Index(i), v, `'*' may only be the whole value, its first or its last character ("abc*", "*abc", "*")`))
		}
	}
	return errs
}

func validateIPBlocks(vs []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(vs) > maxAuthzValues {
		errs = append(errs, field.TooMany(p, len(vs), maxAuthzValues))
	}
	for i, v := range vs {
		if _, err := netip.ParseAddr(v); err == nil {
			continue
		}
		if pr, err := netip.ParsePrefix(v); err != nil {
			errs = append(errs, field.Invalid(p.Index(i), v, "must be an IP address or a CIDR range"))
		} else if pr.Masked() != pr {
			errs = append(errs, field.Invalid(p.Index(i), v, "host bits are set: write "+pr.Masked().String()))
		}
	}
	return errs
}
