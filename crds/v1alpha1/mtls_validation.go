package v1alpha1

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// maxSubjectAltNames is a ServiceEntry's subjectAltNames' MaxItems.
const maxSubjectAltNames = 16

// validateMTLS checks a DestinationPolicy's mtls beside its listenerTls:
// a listener terminates one kind of TLS, so only DISABLE goes with it.
func validateMTLS(m *MTLS, listener *ListenerTLS, p *field.Path) field.ErrorList {
	if m == nil {
		return nil
	}
	var errs field.ErrorList
	switch m.Mode {
	case "":
		errs = append(errs, field.Required(p.Child("mode"), ""))
	case MTLSDisable, MTLSPermissive, MTLSStrict:
	default:
		errs = append(errs, field.NotSupported(p.Child("mode"), m.Mode, MTLSModes))
	}
	if listener != nil && m.Mode != MTLSDisable {
		errs = append(errs, field.Forbidden(p, "mtls with a mode other than DISABLE is not allowed with listenerTls"))
	}
	return errs
}

// validateSubjectAltNames checks a ServiceEntry's expected identities:
// SPIFFE IDs, no duplicates.
func validateSubjectAltNames(sans []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(sans) > maxSubjectAltNames {
		errs = append(errs, field.TooMany(p, len(sans), maxSubjectAltNames))
	}
	seen := make(map[string]bool, len(sans))
	for i, s := range sans {
		if _, err := spiffeid.FromString(s); err != nil {
			errs = append(errs, field.Invalid(p.Index(i), s, "must be a SPIFFE ID (spiffe://<trust-domain>/<path>): "+err.Error()))
		}
		if seen[s] {
			errs = append(errs, field.Duplicate(p.Index(i), s))
		}
		seen[s] = true
	}
	return errs
}
