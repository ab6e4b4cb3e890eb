package v1alpha1

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The Go side of the rules the kubebuilder markers and CEL expressions state
// for the API server; file mode has no API server, so each kind's Validate
// applies them (and checks that regexes compile, which CEL cannot). Keep the
// two in step: crds_test.go runs the invalid cases through both.

// Limits shared with the markers.
const (
	maxHosts         = 64
	maxAttributes    = 32
	maxMatchLen      = 1024
	maxHostLen       = 253
	maxMutations     = 32
	maxKeyLen        = 256
	maxValueLen      = 4096
	maxDurationLen   = 32
	maxRouteDests    = 16
	maxRoutes        = 128
	maxConditions    = 32
	maxSubsets       = 64
	maxPorts         = 32
	maxEndpoints     = 1024
	maxEndpointPorts = 32
	maxWeight        = 1000000
	maxHashKeyLen    = 256
	maxRetryAttempts = 10
)

var (
	durationPattern = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`)
	namePattern     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

func validateMeta(m *metav1.ObjectMeta, namespaced bool) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("metadata")
	if m.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Subdomain(m.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), m.Name, msg))
		}
	}
	if namespaced && m.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(m.Namespace) {
			errs = append(errs, field.Invalid(p.Child("namespace"), m.Namespace, msg))
		}
	}
	return errs
}

func validateHost(h Host, p *field.Path) field.ErrorList {
	switch {
	case h == "":
		return field.ErrorList{field.Required(p, "")}
	case len(h) > maxHostLen:
		return field.ErrorList{field.TooLong(p, "", maxHostLen)}
	}
	return nil
}

func validateHosts(hosts []Host, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case len(hosts) == 0:
		return field.ErrorList{field.Required(p, "at least one host")}
	case len(hosts) > maxHosts:
		errs = append(errs, field.TooMany(p, len(hosts), maxHosts))
	}
	seen := make(map[Host]bool, len(hosts))
	for i, h := range hosts {
		errs = append(errs, validateHost(h, p.Index(i))...)
		if seen[h] {
			errs = append(errs, field.Duplicate(p.Index(i), h))
		}
		seen[h] = true
	}
	return errs
}

func validateName(n Name, p *field.Path) field.ErrorList {
	switch {
	case n == "":
		return field.ErrorList{field.Required(p, "")}
	case len(n) > 63:
		return field.ErrorList{field.TooLong(p, "", 63)}
	case !namePattern.MatchString(string(n)):
		return field.ErrorList{field.Invalid(p, n, "must be lower-case letters, digits and '-', starting and ending with a letter or digit")}
	}
	return nil
}

func validatePort(n PortNumber, p *field.Path) field.ErrorList {
	if n < 1 || n > 65535 {
		return field.ErrorList{field.Invalid(p, n, "must be between 1 and 65535")}
	}
	return nil
}

func validateDuration(d Duration, p *field.Path) field.ErrorList {
	if len(d) > maxDurationLen {
		return field.ErrorList{field.TooLong(p, "", maxDurationLen)}
	}
	if !durationPattern.MatchString(string(d)) {
		return field.ErrorList{field.Invalid(p, d, `must be a duration such as "500ms", "2s" or "1m30s"`)}
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return field.ErrorList{field.Invalid(p, d, err.Error())}
	}
	if v <= 0 {
		return field.ErrorList{field.Invalid(p, d, "must be a positive duration")}
	}
	return nil
}

func validateOptDuration(d *Duration, p *field.Path) field.ErrorList {
	if d == nil {
		return nil
	}
	return validateDuration(*d, p)
}

func validateRange(v *int32, lo, hi int32, p *field.Path) field.ErrorList {
	if v != nil && (*v < lo || *v > hi) {
		return field.ErrorList{field.Invalid(p, *v, fmt.Sprintf("must be between %d and %d", lo, hi))}
	}
	return nil
}

func validateMin(v *int32, lo int32, p *field.Path) field.ErrorList {
	if v != nil && *v < lo {
		return field.ErrorList{field.Invalid(p, *v, fmt.Sprintf("must be at least %d", lo))}
	}
	return nil
}

// validateStringMatch checks at most one of exact, prefix and regex is set
// and that a regex compiles as RE2.
func validateStringMatch(m StringMatch, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	set := 0
	for _, f := range []struct {
		name string
		v    *string
	}{{"exact", m.Exact}, {"prefix", m.Prefix}, {"regex", m.Regex}} {
		if f.v == nil {
			continue
		}
		set++
		if len(*f.v) > maxMatchLen {
			errs = append(errs, field.TooLong(p.Child(f.name), "", maxMatchLen))
		}
	}
	if set > 1 {
		errs = append(errs, field.Invalid(p, "", "at most one of exact, prefix and regex may be set"))
	}
	if m.Regex != nil {
		if _, err := regexp.Compile(*m.Regex); err != nil {
			errs = append(errs, field.Invalid(p.Child("regex"), *m.Regex, "not a valid RE2 expression: "+err.Error()))
		}
	}
	return errs
}

func validateMatch(m *Match, p *field.Path) field.ErrorList {
	if m == nil {
		return nil
	}
	return validateAttributes(m.Attributes, p.Child("attributes"))
}

// validateAttributes checks a map of attribute matchers at path ap.
func validateAttributes(attrs map[string]StringMatch, ap *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(attrs) > maxAttributes {
		errs = append(errs, field.TooMany(ap, len(attrs), maxAttributes))
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" {
			errs = append(errs, field.Invalid(ap, k, "attribute names must not be empty"))
			continue
		}
		errs = append(errs, validateStringMatch(attrs[k], ap.Key(k))...)
	}
	return errs
}

func validateDestination(d *Destination, p *field.Path) field.ErrorList {
	errs := validateHost(d.Host, p.Child("host"))
	if d.Subset != "" {
		errs = append(errs, validateName(d.Subset, p.Child("subset"))...)
	}
	if d.Port != nil {
		errs = append(errs, validatePort(*d.Port, p.Child("port"))...)
	}
	return errs
}

func validateKeyValues(kvs []KeyValue, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(kvs) > maxMutations {
		errs = append(errs, field.TooMany(p, len(kvs), maxMutations))
	}
	for i, kv := range kvs {
		switch {
		case kv.Key == "":
			errs = append(errs, field.Required(p.Index(i).Child("key"), ""))
		case len(kv.Key) > maxKeyLen:
			errs = append(errs, field.TooLong(p.Index(i).Child("key"), "", maxKeyLen))
		}
		if len(kv.Value) > maxValueLen {
			errs = append(errs, field.TooLong(p.Index(i).Child("value"), "", maxValueLen))
		}
	}
	return errs
}

func validateTokenBucket(b *TokenBucket, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if b.MaxTokens < 1 {
		errs = append(errs, field.Invalid(p.Child("maxTokens"), b.MaxTokens, "must be at least 1"))
	}
	errs = append(errs, validateMin(b.TokensPerFill, 1, p.Child("tokensPerFill"))...)
	if b.FillInterval == "" {
		errs = append(errs, field.Required(p.Child("fillInterval"), ""))
	} else {
		errs = append(errs, validateDuration(b.FillInterval, p.Child("fillInterval"))...)
	}
	return errs
}
