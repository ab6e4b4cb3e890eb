package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/certs"
	"github.com/metamesh/metamesh/proxy/metrics"
)

var (
	metricName = regexp.MustCompile(`\bmetamesh_[a-z0-9_]*[a-z0-9]`)
	fqName     = regexp.MustCompile(`fqName: "([^"]+)"`)
	typeLine   = regexp.MustCompile(`(?m)^# TYPE (metamesh_[a-z0-9_]+) `)
)

// describer is a prometheus.Registerer that records the names of what is
// registered, so series that have no sample yet are known too.
type describer struct{ names map[string]bool }

func (d describer) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return nil
}

func (d describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d describer) Unregister(prometheus.Collector) bool { return true }

// exportedMetrics is every metamesh series the proxy and the control plane
// export: the proxy's own list, the ADS server's registrations, and what a
// running control plane's /metrics shows once it has translated a folder.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, n := range proxy.New(zap.NewNop(), metrics.NewProxy()).Metrics().Names() {
		known[n] = true
	}
	srv := xds.New(xds.Options{Registerer: describer{known}})
	describer{known}.MustRegister(certs.NewStore().Collector())
	certPEM, keyPEM, err := ca.Generate("root")
	if err != nil {
		t.Fatal(err)
	}
	root, err := ca.Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.IssueCertificates(xds.Workloads{CA: root, TrustDomain: spiffeid.RequireTrustDomainFromString("cluster.local")}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	se := "apiVersion: metamesh.io/v1alpha1\nkind: ServiceEntry\nmetadata: {name: demo, namespace: default}\n" +
		"spec:\n  hosts: [demo]\n  ports: [{number: 20880, name: dubbo, protocol: dubbo}]\n" +
		"  endpoints: [{address: 127.0.0.1, ports: {dubbo: 20881}}]\n"
	if err := os.WriteFile(filepath.Join(dir, "se.yaml"), []byte(se), 0o644); err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 2)
	get := startCmd(t, Root(), addrs[0], "controlplane", "--config", dir, "--xds", addrs[1], "--insecure")
	for i := 0; !strings.HasPrefix(get("/ready"), "ready"); i++ {
		if i == 500 {
			t.Fatal("the control plane never published its config")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, m := range typeLine.FindAllStringSubmatch(get("/metrics"), -1) {
		known[m[1]] = true
	}
	if !known["metamesh_requests_total"] || !known["metamesh_controlplane_xds_pushes_total"] || !known["metamesh_controlplane_objects"] {
		t.Fatalf("exported series %v: a core series is missing, the test can't see them all", sortedNames(known))
	}
	return known
}

// documentedMetrics is every metamesh series name in the doc at path, with
// a histogram's _bucket, _sum and _count series as the histogram.
func documentedMetrics(t *testing.T, path string, known map[string]bool) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range metricName.FindAllString(string(data), -1) {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && known[b] {
				n = b
			}
		}
		out[n] = true
	}
	return out
}

// TestReferenceMetrics: every series docs/reference.md and
// docs/observability.md name is exported, and observability.md, the full
// list, names every series exported.
func TestReferenceMetrics(t *testing.T) {
	known := exportedMetrics(t)
	for _, path := range []string{referencePath, "../docs/observability.md"} {
		var unknown []string
		for n := range documentedMetrics(t, path, known) {
			if !known[n] {
				unknown = append(unknown, n)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			t.Errorf("%s names series neither the proxy nor the control plane exports: %s", path, strings.Join(unknown, ", "))
		}
	}
	full := documentedMetrics(t, "../docs/observability.md", known)
	var missing []string
	for n := range known {
		if !full[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Errorf("docs/observability.md does not list these exported series (add a row to its tables): %s", strings.Join(missing, ", "))
	}
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
