package kube

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// ExportToAnnotation on a Service is Istio's: the namespaces whose proxies
// see it, comma-separated ("." its own, "*" all, or names), as a
// ServiceEntry's exportTo; without it, "*". A value metamesh can't read
// ("~", a name that is not a namespace's) exports the Service to its own
// namespace only: a Service is not metamesh's to refuse, and showing it
// where it was meant to be hidden would be the worse mistake
// (docs/scoping.md).
const ExportToAnnotation = "networking.istio.io/exportTo"

// serviceExportTo reads svc's ExportToAnnotation.
func serviceExportTo(svc *corev1.Service) v1alpha1.ExportTo {
	var e v1alpha1.ExportTo
	for _, ns := range strings.Split(svc.Annotations[ExportToAnnotation], ",") {
		if ns = strings.TrimSpace(ns); ns != "" && !slices.Contains(e, ns) {
			e = append(e, ns)
		}
	}
	if len(v1alpha1.ValidateExportTo(e, field.NewPath("metadata", "annotations").Key(ExportToAnnotation))) > 0 {
		return v1alpha1.ExportTo{v1alpha1.ExportOwn}
	}
	return e
}
