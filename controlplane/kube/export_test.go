package kube

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

func TestServiceExportTo(t *testing.T) {
	for _, c := range []struct {
		annotation *string
		want       v1alpha1.ExportTo
	}{
		{nil, nil},
		{ptr.To(""), nil},
		{ptr.To("*"), v1alpha1.ExportTo{"*"}},
		{ptr.To(". , billing,billing"), v1alpha1.ExportTo{".", "billing"}},
		// Unreadable: its own namespace only.
		{ptr.To("~"), v1alpha1.ExportTo{"."}},
		{ptr.To("*,shop"), v1alpha1.ExportTo{"."}},
		{ptr.To("Shop"), v1alpha1.ExportTo{"."}},
	} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "s"}}
		if c.annotation != nil {
			svc.Annotations = map[string]string{ExportToAnnotation: *c.annotation}
		}
		if got := serviceExportTo(svc); !slices.Equal(got, c.want) {
			t.Errorf("annotation %v: exportTo %q, want %q", c.annotation, got, c.want)
		}
	}
}
