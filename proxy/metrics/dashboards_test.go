package metrics_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
)

var seriesName = regexp.MustCompile(`\bmetamesh_[a-z0-9_]+`)

// checkExpr fails when expr names a series the proxy doesn't export
// (histogram suffixes count as their histogram).
func checkExpr(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	found := seriesName.FindAllString(expr, -1)
	if len(found) == 0 {
		t.Errorf("%s: %q names no metamesh series", where, expr)
	}
	for _, n := range found {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && known[b] {
				base = b
			}
		}
		if !known[base] {
			t.Errorf("%s: %s is not a metric the proxy exports", where, n)
		}
	}
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
		t.Errorf("%s: unbalanced brackets in %q", where, expr)
	}
}

func knownNames(t *testing.T) map[string]bool {
	// A whole proxy: it registers collectors of its own beside the
	// metrics package's series.
	names := proxy.New(zap.NewNop(), metrics.NewProxy()).Metrics().Names()
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	if !known["metamesh_requests_total"] || !known["metamesh_request_duration_seconds"] || !known["metamesh_upstream_ejected"] {
		t.Fatalf("Names() = %v: the core series are missing", names)
	}
	return known
}

func TestGrafanaDashboard(t *testing.T) {
	known := knownNames(t)
	data, err := os.ReadFile("../../deploy/observability/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard lacks a title, uid or panels")
	}
	for _, want := range []string{"Requests per second", "Error rate", "p50 / p99", "Upstream health", "xDS sync"} {
		found := false
		for _, p := range dash.Panels {
			found = found || strings.Contains(p.Title, want)
		}
		if !found {
			t.Errorf("no panel about %q", want)
		}
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, "panel "+p.Title, tg.Expr, known)
		}
	}
}

// rule is one alerting rule of prometheus-rules.yaml.
type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// alertRules parses prometheus-rules.yaml strictly.
func alertRules(t *testing.T) []rule {
	t.Helper()
	data, err := os.ReadFile("../../deploy/observability/prometheus-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(data, &rules); err != nil {
		t.Fatalf("rules: %v", err)
	}
	var out []rule
	for _, g := range rules.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

func TestAlertRules(t *testing.T) {
	known := knownNames(t)
	alerts := map[string]bool{}
	for _, r := range alertRules(t) {
		alerts[r.Alert] = true
		if r.Alert == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
			t.Errorf("rule %q: alert, for, labels.severity and annotations.summary are required", r.Alert)
		}
		checkExpr(t, "alert "+r.Alert, r.Expr, known)
	}
	for _, want := range []string{"MetameshHighErrorRate", "MetameshConfigRejected", "MetameshConfigNotSyncing"} {
		if !alerts[want] {
			t.Errorf("no %s alert", want)
		}
	}
}

// MetameshConfigNotSyncing must fire for a proxy that never ACKed: one
// that NACKs (it has no ack series, so the ack side must be an "unless",
// not a comparison an absent series never satisfies) and one with no
// config at all, whose sign is metamesh_ready at 0.
func TestConfigNotSyncingCoversProxiesThatNeverAcked(t *testing.T) {
	var expr string
	for _, r := range alertRules(t) {
		if r.Alert == "MetameshConfigNotSyncing" {
			expr = r.Expr
		}
	}
	if !strings.Contains(expr, "unless on (instance)") || strings.Contains(expr, `{result="ack"}[30m])) == 0`) {
		t.Errorf("expr %q: the ack side must be an \"unless\"", expr)
	}
	if !strings.Contains(expr, "(metamesh_ready) == 0") {
		t.Errorf("expr %q: a proxy without config (metamesh_ready 0) does not fire it", expr)
	}
	srv := proxy.New(zap.NewNop(), metrics.NewProxy())
	if got := gauge(t, srv, "metamesh_ready"); got != 0 {
		t.Errorf("metamesh_ready = %v before any config, want 0", got)
	}
	if err := srv.Apply(&xdsapi.Resources{}); err != nil {
		t.Fatal(err)
	}
	if got := gauge(t, srv, "metamesh_ready"); got != 1 {
		t.Errorf("metamesh_ready = %v once a config is applied, want 1", got)
	}
}

// gauge is the value of srv's unlabelled gauge name, or -1 if absent.
func gauge(t *testing.T, srv *proxy.Server, name string) float64 {
	t.Helper()
	mfs, err := srv.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
