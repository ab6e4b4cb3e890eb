// Package crds_test checks the CRD kinds three ways at once: the samples
// decode strictly and validate clean; the generated CRD YAML is a valid CRD
// whose CEL rules compile within the API server's cost limits; and every
// invalid object is rejected at the same field by the Go-side Validate (file
// mode) and by the API server's own OpenAPI and CEL validators (Kubernetes).
package crds_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	v1 "github.com/metamesh/metamesh/crds/v1alpha1"
)

// validatable is what every metamesh kind implements.
type validatable interface {
	Validate() field.ErrorList
}

// newObject returns an empty object of a metamesh kind.
func newObject(t *testing.T, kind string) validatable {
	t.Helper()
	switch kind {
	case v1.KindServiceEntry:
		return &v1.ServiceEntry{}
	case v1.KindDestinationPolicy:
		return &v1.DestinationPolicy{}
	case v1.KindMetaRouter:
		return &v1.MetaRouter{}
	case v1.KindApplicationProtocol:
		return &v1.ApplicationProtocol{}
	case v1.KindSidecar:
		return &v1.Sidecar{}
	case v1.KindAuthorizationPolicy:
		return &v1.AuthorizationPolicy{}
	}
	t.Fatalf("unknown kind %q", kind)
	return nil
}

// decodeSample strictly decodes a metamesh sample from samples/.
func decodeSample(t *testing.T, file string) (validatable, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("samples", file))
	if err != nil {
		t.Fatal(err)
	}
	var tm struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(data, &tm); err != nil {
		t.Fatal(err)
	}
	if tm.APIVersion != v1.SchemeGroupVersion.String() {
		t.Fatalf("%s: apiVersion %q", file, tm.APIVersion)
	}
	obj := newObject(t, tm.Kind)
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return obj, tm.Kind
}

func TestSamplesValidate(t *testing.T) {
	files, err := filepath.Glob("samples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, f := range files {
		f = filepath.Base(f)
		if strings.HasPrefix(f, "aeraki-") {
			continue // Aeraki's apiVersion: TestAerakiSamplesFitTheirCRDs
		}
		t.Run(f, func(t *testing.T) {
			obj, kind := decodeSample(t, f)
			kinds[kind] = true
			if errs := obj.Validate(); len(errs) > 0 {
				t.Errorf("Validate: %v", errs)
			}
			s := loadServer(t, crdFiles[kind])
			if errs := s.validate(t, toMap(t, obj)); len(errs) > 0 {
				t.Errorf("API server validation: %v", errs)
			}
		})
	}
	for _, k := range []string{v1.KindServiceEntry, v1.KindDestinationPolicy, v1.KindMetaRouter, v1.KindApplicationProtocol, v1.KindSidecar} {
		if !kinds[k] {
			t.Errorf("no sample of %s", k)
		}
	}
}

func toMap(t *testing.T, obj any) map[string]any {
	t.Helper()
	// As the API server decodes it: integers as int64, not float64.
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// server is one CRD version's validation as the API server runs it on
// create: OpenAPI schema, list-set and list-map uniqueness, then CEL.
type server struct {
	openapi    apiservervalidation.SchemaValidator
	structural *schema.Structural
}

func (s *server) validate(t *testing.T, obj map[string]any) field.ErrorList {
	t.Helper()
	errs := apiservervalidation.ValidateCustomResource(nil, obj, s.openapi)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, s.structural, obj)...)
	celErrs, _ := cel.NewValidator(s.structural, true, celconfig.PerCallLimit).
		Validate(context.Background(), nil, s.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...)
}

var crdFiles = map[string]string{
	v1.KindServiceEntry:        "bases/metamesh.io_serviceentries.yaml",
	v1.KindDestinationPolicy:   "bases/metamesh.io_destinationpolicies.yaml",
	v1.KindMetaRouter:          "bases/metamesh.io_metarouters.yaml",
	v1.KindApplicationProtocol: "bases/metamesh.io_applicationprotocols.yaml",
	v1.KindSidecar:             "bases/metamesh.io_sidecars.yaml",
	v1.KindAuthorizationPolicy: "bases/metamesh.io_authorizationpolicies.yaml",
}

func loadCRD(t *testing.T, file string) (*apiextensionsv1.CustomResourceDefinition, *apiextensions.CustomResourceDefinition) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&crd)
	var internal apiextensions.CustomResourceDefinition
	if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&crd, &internal, nil); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return &crd, &internal
}

func loadServer(t *testing.T, crdFile string) *server {
	t.Helper()
	_, internal := loadCRD(t, crdFile)
	// With a single version, conversion to the internal type hoists its
	// schema to spec.validation.
	v := internal.Spec.Validation
	if v == nil {
		v = internal.Spec.Versions[0].Schema
	}
	props := v.OpenAPIV3Schema
	openapi, _, err := apiservervalidation.NewSchemaValidator(props)
	if err != nil {
		t.Fatal(err)
	}
	st, err := schema.NewStructural(props)
	if err != nil {
		t.Fatal(err)
	}
	return &server{openapi: openapi, structural: st}
}

// celRules collects every x-kubernetes-validations rule in a schema.
func celRules(p *apiextensionsv1.JSONSchemaProps, out *[]string) {
	if p == nil {
		return
	}
	for _, r := range p.XValidations {
		*out = append(*out, r.Rule)
	}
	for _, c := range p.Properties {
		celRules(&c, out)
	}
	if p.Items != nil {
		celRules(p.Items.Schema, out)
	}
	if p.AdditionalProperties != nil {
		celRules(p.AdditionalProperties.Schema, out)
	}
}

func TestGeneratedCRDs(t *testing.T) {
	files, err := filepath.Glob("bases/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(crdFiles) + 3; len(files) != want {
		t.Errorf("want %d CRD files (one per metamesh kind, 3 Aeraki), found %d: %v", want, len(files), files)
	}
	// Each kind's CEL rules that must reach its CRD (substrings).
	wantRules := map[string][]string{
		"metamesh.io_serviceentries.yaml":      {"q.name == p.name", "q.number == p.number", "e.ports.all"},
		"metamesh.io_destinationpolicies.yaml": {"t.name == s.name", "CONSISTENT_HASH", "duration(self)"},
		"metamesh.io_metarouters.yaml": {"s.name == r.name", "d.weight).sum() == 100", "has(self.exact), has(self.prefix), has(self.regex)",
			"has(self.mirror)", "has(self.tokenBucket)", "duration(self)"},
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			crd, internal := loadCRD(t, f)
			if errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), internal); len(errs) > 0 {
				t.Fatalf("the API server would reject this CRD: %v", errs)
			}
			v := crd.Spec.Versions[0]
			if v.Name != "v1alpha1" || v.Subresources == nil || v.Subresources.Status == nil {
				t.Errorf("want v1alpha1 with the status subresource, got %s %+v", v.Name, v.Subresources)
			}
			if crd.Spec.Names.Kind == v1.KindApplicationProtocol && crd.Spec.Group == v1.GroupName {
				if crd.Spec.Scope != apiextensionsv1.ClusterScoped {
					t.Errorf("ApplicationProtocol scope %s, want Cluster", crd.Spec.Scope)
				}
			} else if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
				t.Errorf("%s scope %s, want Namespaced", crd.Spec.Names.Kind, crd.Spec.Scope)
			}
			var rules []string
			celRules(v.Schema.OpenAPIV3Schema, &rules)
			for _, want := range wantRules[filepath.Base(f)] {
				if !slices.ContainsFunc(rules, func(r string) bool { return strings.Contains(r, want) }) {
					t.Errorf("no x-kubernetes-validations rule containing %q; rules: %q", want, rules)
				}
			}
		})
	}
}

// TestAerakiSamplesFitTheirCRDs applies Aeraki's YAML, unchanged, to the
// CRDs generated for metaprotocol.aeraki.io.
func TestAerakiSamplesFitTheirCRDs(t *testing.T) {
	for file, crd := range map[string]string{
		"aeraki-traffic-split.yaml":             "bases/metaprotocol.aeraki.io_metarouters.yaml",
		"aeraki-applicationprotocol.yaml":       "bases/metaprotocol.aeraki.io_applicationprotocols.yaml",
		"aeraki-dubbo-authorizationpolicy.yaml": "bases/dubbo.aeraki.io_dubboauthorizationpolicies.yaml",
	} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("samples", file))
			if err != nil {
				t.Fatal(err)
			}
			js, err := yaml.YAMLToJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			var obj map[string]any
			if err := utiljson.Unmarshal(js, &obj); err != nil { // integers as int64
				t.Fatal(err)
			}
			if errs := loadServer(t, crd).validate(t, obj); len(errs) > 0 {
				t.Errorf("API server validation: %v", errs)
			}
		})
	}
}
