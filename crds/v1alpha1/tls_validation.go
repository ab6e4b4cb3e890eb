package v1alpha1

import (
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// maxPathLen bounds a file path in a TLS setting.
const maxPathLen = 4096

func validateClientTLS(t *ClientTLS, p *field.Path) field.ErrorList {
	if t == nil {
		return nil
	}
	var errs field.ErrorList
	switch t.Mode {
	case "":
		errs = append(errs, field.Required(p.Child("mode"), ""))
	case ClientTLSDisable, ClientTLSSimple, ClientTLSMutual:
	default:
		errs = append(errs, field.NotSupported(p.Child("mode"), t.Mode, []ClientTLSMode{ClientTLSDisable, ClientTLSSimple, ClientTLSMutual}))
	}
	mutual := t.Mode == ClientTLSMutual
	errs = append(errs, pairedFiles(mutual, t.ClientCertificate, p.Child("clientCertificate"), "MUTUAL")...)
	errs = append(errs, pairedFiles(mutual, t.PrivateKey, p.Child("privateKey"), "MUTUAL")...)
	errs = append(errs, validatePath(t.CACertificates, p.Child("caCertificates"))...)
	if t.Mode == ClientTLSDisable && (t.CACertificates != "" || t.SNI != "" || len(t.SubjectAltNames) > 0 || t.InsecureSkipVerify) {
		errs = append(errs, field.Forbidden(p, "mode DISABLE takes no other field"))
	}
	if t.SNI != "" {
		for _, msg := range validation.IsDNS1123Subdomain(t.SNI) {
			errs = append(errs, field.Invalid(p.Child("sni"), t.SNI, msg))
		}
	}
	if len(t.SubjectAltNames) > 16 {
		errs = append(errs, field.TooMany(p.Child("subjectAltNames"), len(t.SubjectAltNames), 16))
	}
	for i, san := range t.SubjectAltNames {
		if san == "" || len(san) > maxHostLen {
			errs = append(errs, field.Invalid(p.Child("subjectAltNames").Index(i), san, "must be a name of 1 to 253 characters"))
		}
	}
	return errs
}

func validateListenerTLS(t *ListenerTLS, p *field.Path) field.ErrorList {
	if t == nil {
		return nil
	}
	var errs field.ErrorList
	switch t.Mode {
	case "":
		errs = append(errs, field.Required(p.Child("mode"), ""))
	case ServerTLSSimple, ServerTLSMutual:
	default:
		errs = append(errs, field.NotSupported(p.Child("mode"), t.Mode, []ServerTLSMode{ServerTLSSimple, ServerTLSMutual}))
	}
	errs = append(errs, pairedFiles(true, t.ServerCertificate, p.Child("serverCertificate"), "")...)
	errs = append(errs, pairedFiles(true, t.PrivateKey, p.Child("privateKey"), "")...)
	errs = append(errs, pairedFiles(t.Mode == ServerTLSMutual, t.CACertificates, p.Child("caCertificates"), "MUTUAL")...)
	return errs
}

// pairedFiles checks a file path that is required when want, and
// forbidden otherwise (with mode naming the mode it belongs to, if any).
func pairedFiles(want bool, path string, p *field.Path, mode string) field.ErrorList {
	switch {
	case want && path == "":
		if mode != "" {
			return field.ErrorList{field.Required(p, "required with mode "+mode)}
		}
		return field.ErrorList{field.Required(p, "")}
	case !want && path != "" && mode != "":
		return field.ErrorList{field.Forbidden(p, "only allowed with mode "+mode)}
	}
	return validatePath(path, p)
}

func validatePath(path string, p *field.Path) field.ErrorList {
	if len(path) > maxPathLen {
		return field.ErrorList{field.TooLong(p, "", maxPathLen)}
	}
	return nil
}
