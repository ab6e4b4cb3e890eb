package v1alpha1

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

const maxDescriptors = 32

// RateLimitServiceRef is a global rate limit's rateLimitService, parsed:
// the ServiceEntry host and port (and subset) whose cluster serves it.
type RateLimitServiceRef struct {
	Host   string
	Port   int32
	Subset string
}

// ParseRateLimitService reads outbound|PORT|SUBSET|HOST (Istio's cluster
// name, as Aeraki writes it) or HOST:PORT; false when s is neither.
func ParseRateLimitService(s string) (RateLimitServiceRef, bool) {
	var ref RateLimitServiceRef
	var port string
	if rest, ok := strings.CutPrefix(s, "outbound|"); ok {
		parts := strings.Split(rest, "|")
		if len(parts) != 3 || strings.Contains(parts[2], ":") {
			return ref, false
		}
		port, ref.Subset, ref.Host = parts[0], parts[1], parts[2]
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 || strings.ContainsAny(s[:i], "|:") {
			return ref, false
		}
		ref.Host, port = s[:i], s[i+1:]
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || ref.Host == "" || len(port) > 5 {
		return ref, false
	}
	ref.Port = int32(n)
	return ref, true
}

// validateGlobalRateLimit checks a MetaRouter's globalRateLimit; that
// its service is a ServiceEntry's is the translation's to check.
func validateGlobalRateLimit(g *GlobalRateLimit, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateString(g.Domain, maxKeyLen, p.Child("domain"))...)
	errs = append(errs, validateMatch(g.Match, p.Child("match"))...)
	sp := p.Child("rateLimitService")
	switch ref, ok := ParseRateLimitService(g.RateLimitService); {
	case g.RateLimitService == "":
		errs = append(errs, field.Required(sp, ""))
	case !ok:
		errs = append(errs, field.Invalid(sp, g.RateLimitService, "must be outbound|PORT|SUBSET|HOST or HOST:PORT, with PORT between 1 and 65535"))
	default:
		errs = append(errs, validateHost(Host(ref.Host), sp)...)
		if ref.Subset != "" {
			errs = append(errs, validateName(Name(ref.Subset), sp)...)
		}
	}
	errs = append(errs, validateOptDuration(g.RequestTimeout, p.Child("requestTimeout"))...)
	dp := p.Child("descriptors")
	switch {
	case len(g.Descriptors) == 0:
		errs = append(errs, field.Required(dp, "at least one descriptor entry"))
	case len(g.Descriptors) > maxDescriptors:
		errs = append(errs, field.TooMany(dp, len(g.Descriptors), maxDescriptors))
	}
	for i, d := range g.Descriptors {
		errs = append(errs, validateString(d.Property, maxKeyLen, dp.Index(i).Child("property"))...)
		errs = append(errs, validateString(d.DescriptorKey, maxKeyLen, dp.Index(i).Child("descriptorKey"))...)
	}
	return errs
}

// validateString checks a required string of at most max bytes.
func validateString(s string, limit int, p *field.Path) field.ErrorList {
	switch {
	case s == "":
		return field.ErrorList{field.Required(p, "")}
	case len(s) > limit:
		return field.ErrorList{field.TooLong(p, "", limit)}
	}
	return nil
}
