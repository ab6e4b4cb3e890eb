package pipeline

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/translate"
)

func TestMetrics(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	ok := metav1.Condition{Type: "Accepted", Status: metav1.ConditionTrue}
	bad := metav1.Condition{Type: "ResolvedRefs", Status: metav1.ConditionFalse}
	m.observe(&translate.Output{Status: map[string]translate.Conditions{
		"MetaRouter/default/a":   {ok, bad},
		"MetaRouter/default/b":   {ok},
		"ServiceEntry/default/s": {ok},
	}}, 3*time.Millisecond)
	for _, c := range []struct {
		kind, cond, status string
		want               float64
	}{
		{"MetaRouter", "Accepted", "True", 2},
		{"MetaRouter", "ResolvedRefs", "False", 1},
		{"ServiceEntry", "Accepted", "True", 1},
	} {
		if got := testutil.ToFloat64(m.objects.WithLabelValues(c.kind, c.cond, c.status)); got != c.want {
			t.Errorf("objects{%s,%s,%s} = %v, want %v", c.kind, c.cond, c.status, got, c.want)
		}
	}
	// The next translation replaces the counts.
	m.observe(&translate.Output{Status: map[string]translate.Conditions{"ServiceEntry/default/s": {ok}}}, time.Millisecond)
	if got := testutil.ToFloat64(m.objects.WithLabelValues("MetaRouter", "Accepted", "True")); got != 0 {
		t.Errorf("MetaRouter count kept after it was gone: %v", got)
	}
	if n := testutil.CollectAndCount(m.translate); n != 1 {
		t.Errorf("translation histogram: %d series", n)
	}
}
