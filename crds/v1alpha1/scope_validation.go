package v1alpha1

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits shared with the scoping markers.
const (
	maxExportTo      = 64
	maxEgress        = 16
	maxEgressHosts   = 256
	maxEgressHostLen = 63 + 1 + maxHostLen
	maxGateways      = 32
	maxGatewayLen    = 63 + 1 + maxHostLen
)

// ValidateExportTo checks an exportTo list (of a kind, or of a Service's
// networking.istio.io/exportTo annotation): each value ".", "*" or a
// namespace name, none twice, and "*" alone.
func ValidateExportTo(e ExportTo, p *field.Path) field.ErrorList {
	errs := validateSet(e, maxExportTo, p, func(ip *field.Path, ns string) (errs field.ErrorList) {
		if ns == ExportAll || ns == ExportOwn {
			return nil
		}
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(ip, ns, `must be ".", "*" or a namespace name: `+msg))
		}
		return errs
	})
	if len(e) > 1 && slices.Contains(e, ExportAll) {
		errs = append(errs, field.Invalid(p, e, `"*" exports to every namespace and can't be combined with other values`))
	}
	return errs
}

// ValidateGateways checks a gateways list: each value "mesh",
// "namespace/name" or a bare gateway name, none twice.
func ValidateGateways(g Gateways, p *field.Path) field.ErrorList {
	return validateSet(g, maxGateways, p, func(ip *field.Path, gw string) (errs field.ErrorList) {
		ns, name, qualified := strings.Cut(gw, "/")
		if !qualified {
			ns, name = "", gw
		}
		for _, msg := range GatewayNameErrors(ns, name, qualified) {
			errs = append(errs, field.Invalid(ip, gw, msg))
		}
		return errs
	})
}

// validateSet checks a list whose values must be distinct: at most limit of
// them, none twice, and each by check.
func validateSet[S ~[]string](values S, limit int, p *field.Path, check func(ip *field.Path, v string) field.ErrorList) field.ErrorList {
	var errs field.ErrorList
	if len(values) > limit {
		errs = append(errs, field.TooMany(p, len(values), limit))
	}
	seen := make(map[string]bool, len(values))
	for i, v := range values {
		ip := p.Index(i)
		if seen[v] {
			errs = append(errs, field.Duplicate(ip, v))
		}
		seen[v] = true
		errs = append(errs, check(ip, v)...)
	}
	return errs
}

// GatewayNameErrors says what is wrong with a gateway's namespace and
// name (nil: nothing); qualified is whether the namespace was given.
// The proxy's --gateway flag checks its value with it too.
func GatewayNameErrors(ns, name string, qualified bool) []string {
	var out []string
	if len(ns)+1+len(name) > maxGatewayLen {
		return []string{fmt.Sprintf("must be at most %d characters", maxGatewayLen)}
	}
	if qualified {
		for _, msg := range validation.IsDNS1123Label(ns) {
			out = append(out, `namespace must be a namespace name: `+msg)
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		out = append(out, `must be "mesh", "namespace/name" or a gateway name: `+msg)
	}
	return out
}

// Validate checks a Sidecar as the API server would.
func (x *Sidecar) Validate() field.ErrorList {
	errs := validateMeta(&x.ObjectMeta, true)
	p := field.NewPath("spec", "egress")
	switch {
	case len(x.Spec.Egress) == 0:
		errs = append(errs, field.Required(p, "at least one egress entry"))
	case len(x.Spec.Egress) > maxEgress:
		errs = append(errs, field.TooMany(p, len(x.Spec.Egress), maxEgress))
	}
	for i, eg := range x.Spec.Egress {
		hp := p.Index(i).Child("hosts")
		switch {
		case len(eg.Hosts) == 0:
			errs = append(errs, field.Required(hp, "at least one namespace/host"))
		case len(eg.Hosts) > maxEgressHosts:
			errs = append(errs, field.TooMany(hp, len(eg.Hosts), maxEgressHosts))
		}
		seen := make(map[string]bool, len(eg.Hosts))
		for j, h := range eg.Hosts {
			if seen[h] {
				errs = append(errs, field.Duplicate(hp.Index(j), h))
			}
			seen[h] = true
			errs = append(errs, validateEgressHost(h, hp.Index(j))...)
		}
	}
	return errs
}

// validateEgressHost checks one "namespace/host" of a Sidecar.
func validateEgressHost(h string, p *field.Path) field.ErrorList {
	if len(h) > maxEgressHostLen {
		return field.ErrorList{field.TooLong(p, "", maxEgressHostLen)}
	}
	ns, host, ok := strings.Cut(h, "/")
	if !ok {
		return field.ErrorList{field.Invalid(p, h, `must be "namespace/host" (namespace a name, "." or "*"; host a host, "*" or "*.suffix")`)}
	}
	var errs field.ErrorList
	if ns != ExportAll && ns != ExportOwn {
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(p, h, `namespace must be ".", "*" or a namespace name: `+msg))
		}
	}
	rest := strings.TrimPrefix(host, "*.")
	switch {
	case host == "*":
	case rest == "" || strings.ContainsAny(rest, "*/"):
		errs = append(errs, field.Invalid(p, h, `host must be a host, "*" or "*.suffix"`))
	case len(host) > maxHostLen:
		errs = append(errs, field.TooLong(p, "", maxHostLen+len(ns)+1))
	}
	return errs
}
