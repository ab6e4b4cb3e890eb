package file

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/json"

	aerakidubbo "github.com/metamesh/metamesh/crds/aeraki/dubbo/v1alpha1"
	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// validated is a metamesh kind: an object that checks itself.
type validated interface {
	metav1.Object
	Validate() field.ErrorList
}

var (
	metameshAPI = v1alpha1.SchemeGroupVersion.String()
	aerakiAPI   = aeraki.SchemeGroupVersion.String()
	aerakiDubbo = aerakidubbo.SchemeGroupVersion.String()
	supported   = fmt.Sprintf("want %s %s, %s, %s, %s, %s or %s, or %s %s or %s, or %s %s", metameshAPI,
		v1alpha1.KindServiceEntry, v1alpha1.KindDestinationPolicy, v1alpha1.KindMetaRouter, v1alpha1.KindApplicationProtocol, v1alpha1.KindSidecar,
		v1alpha1.KindAuthorizationPolicy, aerakiAPI, v1alpha1.KindMetaRouter, v1alpha1.KindApplicationProtocol,
		aerakiDubbo, aerakidubbo.KindDubboAuthorizationPolicy)
)

// decode dispatches a document on its apiVersion and kind.
func (l *loader) decode(d *document) {
	if !l.countObject(d) {
		return
	}
	switch d.head.APIVersion {
	case metameshAPI:
		switch d.head.Kind {
		case v1alpha1.KindServiceEntry:
			decodeMetamesh(l, d, true, func(c *Config, o *v1alpha1.ServiceEntry) { c.ServiceEntries = append(c.ServiceEntries, o) })
			return
		case v1alpha1.KindDestinationPolicy:
			decodeMetamesh(l, d, true, func(c *Config, o *v1alpha1.DestinationPolicy) {
				c.DestinationPolicies = append(c.DestinationPolicies, o)
			})
			return
		case v1alpha1.KindMetaRouter:
			decodeMetamesh(l, d, true, func(c *Config, o *v1alpha1.MetaRouter) { c.MetaRouters = append(c.MetaRouters, o) })
			return
		case v1alpha1.KindApplicationProtocol:
			decodeMetamesh(l, d, false, func(c *Config, o *v1alpha1.ApplicationProtocol) {
				c.ApplicationProtocols = append(c.ApplicationProtocols, o)
			})
			return
		case v1alpha1.KindSidecar:
			decodeMetamesh(l, d, true, func(c *Config, o *v1alpha1.Sidecar) { c.Sidecars = append(c.Sidecars, o) })
			return
		case v1alpha1.KindAuthorizationPolicy:
			decodeMetamesh(l, d, true, func(c *Config, o *v1alpha1.AuthorizationPolicy) {
				c.AuthorizationPolicies = append(c.AuthorizationPolicies, o)
			})
			return
		}
	case aerakiAPI:
		switch d.head.Kind {
		case v1alpha1.KindMetaRouter:
			decodeAeraki(l, d, (*aeraki.MetaRouter).ToMetamesh, func(c *Config, o *v1alpha1.MetaRouter) { c.MetaRouters = append(c.MetaRouters, o) })
			return
		case v1alpha1.KindApplicationProtocol:
			decodeAeraki(l, d, (*aeraki.ApplicationProtocol).ToMetamesh, func(c *Config, o *v1alpha1.ApplicationProtocol) {
				c.ApplicationProtocols = append(c.ApplicationProtocols, o)
			})
			return
		}
	case aerakiDubbo:
		if d.head.Kind == aerakidubbo.KindDubboAuthorizationPolicy {
			decodeAeraki(l, d, (*aerakidubbo.DubboAuthorizationPolicy).ToMetamesh, func(c *Config, o *v1alpha1.AuthorizationPolicy) {
				c.AuthorizationPolicies = append(c.AuthorizationPolicies, o)
			})
			return
		}
	}
	p := l.at(d, true)
	if d.head.APIVersion == "" {
		l.add(p, "apiVersion", "Required value")
		return
	}
	l.add(p, "apiVersion", fmt.Sprintf("unsupported kind %s in %s: %s", d.head.Kind, d.head.APIVersion, supported))
}

// decodeMetamesh decodes, defaults and validates one of metamesh's kinds.
func decodeMetamesh[T any, P interface {
	*T
	validated
}](l *loader, d *document, namespaced bool, add func(*Config, P)) {
	at := l.at(d, namespaced)
	obj := P(new(T))
	mark := len(l.problems)
	if !l.strict(at, d.json, obj) {
		return
	}
	if !namespaced {
		// As kubectl does: a namespace on a cluster-scoped object is ignored.
		obj.SetNamespace("")
	} else if obj.GetNamespace() == "" {
		obj.SetNamespace(metav1.NamespaceDefault)
	}
	l.accept(at, mark, d.source, obj, func(c *Config) { add(c, obj) })
}

// decodeAeraki decodes one of Aeraki's kinds and converts it to metamesh's.
func decodeAeraki[T any, P interface {
	*T
	metav1.Object
}, M validated](l *loader, d *document, convert func(P) (M, error), add func(*Config, M)) {
	at := l.at(d, true)
	in := P(new(T))
	mark := len(l.problems)
	if !l.strict(at, d.json, in) {
		return
	}
	if in.GetNamespace() == "" {
		in.SetNamespace(metav1.NamespaceDefault)
	}
	out, err := convert(in)
	if err != nil {
		l.addConversion(at, err)
		return
	}
	// An ApplicationProtocol is renamed by the conversion (cluster-scoped,
	// named by its protocol); report and key it by what it became.
	at.Namespace, at.Name = out.GetNamespace(), out.GetName()
	l.accept(at, mark, d.source+" ("+d.head.APIVersion+")", out, func(c *Config) { add(c, out) })
}

// accept validates obj and, when its document (problems since mark) is
// clean, records it for settle, which picks one object per key.
func (l *loader) accept(at Problem, mark int, source string, obj validated, add func(*Config)) {
	l.addErrors(at, capErrors(obj))
	l.addErrors(at, obj.Validate())
	if len(l.problems) > mark {
		return
	}
	l.defs = append(l.defs, &definition{at: at, source: source, obj: obj, add: add})
}

// at is the location of problems in d, before the object is decoded.
func (l *loader) at(d *document, namespaced bool) Problem {
	p := Problem{File: d.file, Document: d.n, Kind: d.head.Kind, Name: d.head.Metadata.Name}
	if namespaced {
		p.Namespace = cmp.Or(d.head.Metadata.Namespace, metav1.NamespaceDefault)
	}
	return p
}

func (l *loader) add(at Problem, path, reason string) {
	at.Field, at.Reason = path, oneLine(reason)
	l.problems = append(l.problems, at)
}

func (l *loader) addErrors(at Problem, errs field.ErrorList) {
	for _, e := range errs {
		l.add(at, e.Field, e.ErrorBody())
	}
}

// strict decodes js into obj, reporting unknown and duplicate fields with
// their paths. It reports false when obj could not be fully decoded (a value
// of the wrong type), so validating it would only add noise.
//
// Not sigs.k8s.io/yaml.UnmarshalStrict: that one matches field names
// case-insensitively (Spec: is taken for spec:) and names an unknown field
// without its path. sigs.k8s.io/json is what the API server decodes with.
func (l *loader) strict(at Problem, js []byte, obj any) bool {
	strictErrs, err := json.UnmarshalStrict(js, obj)
	if err != nil {
		path, reason := typeError(err)
		l.add(at, path, reason)
		return false
	}
	for _, e := range strictErrs {
		var fe json.FieldError
		if errors.As(e, &fe) {
			// e reads `unknown field "spec.foo"`; the path goes in Field.
			what, _, _ := strings.Cut(fe.Error(), ` "`)
			l.add(at, fe.FieldPath(), what)
			continue
		}
		l.add(at, "", e.Error())
	}
	return true
}

// typeErrorPattern parses sigs.k8s.io/json's UnmarshalTypeError, which is
// internal to it: "json: cannot unmarshal string into Go struct field
// WeightedDestination.spec.routes.route.weight of type int32".
var typeErrorPattern = regexp.MustCompile(`^json: cannot unmarshal (.+) into Go struct field [^.]*\.(\S+) of type (.+)$`)

func typeError(err error) (path, reason string) {
	if m := typeErrorPattern.FindStringSubmatch(err.Error()); m != nil {
		return m[2], "cannot unmarshal " + m[1] + " into " + m[3]
	}
	return "", strings.TrimPrefix(err.Error(), "json: ")
}

func unmarshalHeader(js []byte, h *header) error {
	if err := json.UnmarshalCaseSensitivePreserveInts(js, h); err != nil {
		if path, reason := typeError(err); path != "" {
			return errors.New(path + ": " + reason)
		}
		return err
	}
	return nil
}

// addConversion reports ToMetamesh's error field by field.
func (l *loader) addConversion(at Problem, err error) {
	var agg utilerrors.Aggregate
	if !errors.As(err, &agg) {
		l.add(at, "", err.Error())
		return
	}
	for _, e := range agg.Errors() {
		var fe *field.Error
		if errors.As(e, &fe) {
			l.add(at, fe.Field, fe.ErrorBody())
		} else {
			l.add(at, "", e.Error())
		}
	}
}

// oneLine joins a multi-line message (the YAML parser's "unmarshal errors:"
// list) so that each problem prints and logs as one line.
func oneLine(s string) string {
	if !strings.Contains(s, "\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
