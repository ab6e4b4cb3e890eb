package fault

import (
	"bytes"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// churnTmpl: a weighted route between cluster one (two of three v1
// providers, rotating) and cluster two (the v2 provider), plus a header
// route whose attribute value changes.
var churnTmpl = template.Must(template.New("").Funcs(template.FuncMap{"port": port}).Parse(`
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: dubbo
  address: {socket_address: {address: 127.0.0.1, port_value: {{port .Listen}}}}
  filter_chains:
  - filters:
    - name: metamesh.meta_protocol_proxy
      typed_config:
        "@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy
        codec: dubbo
        route_config_name: dubbo
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: dubbo
  virtual_hosts:
  - name: greetings
    domains: ["{{.Iface}}"]
    routes:
    - name: tagged
      match: {prefix: "", headers: [{name: tag, string_match: {exact: "tag-{{.Round}}"}}]}
      route: {cluster: two}
    - name: split
      match: {prefix: ""}
      route:
        weighted_clusters:
          clusters:
          - {name: one, weight: {{.W1}}}
          - {name: two, weight: {{.W2}}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: one
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: one
    endpoints:
    - lb_endpoints:
      {{- range .One}}
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{port .}}}}}
      {{- end}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: two
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: two
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{port .Two}}}}}
`))

type churnConfig struct {
	Iface, Listen string
	One           []string
	Two           string
	W1, W2        int
	Round         int
}

func (c churnConfig) resources(t testing.TB) *xdsapi.Resources {
	t.Helper()
	var buf bytes.Buffer
	if err := churnTmpl.Execute(&buf, c); err != nil {
		t.Fatal(err)
	}
	res, err := xdsapi.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("config: %v\n%s", err, buf.String())
	}
	return res
}

// TestConfigChurn applies 1,000 endpoint changes and 100 route changes a
// minute (one change every 60 ms, every tenth one a route change too) to
// an in-process proxy while a dubbo-go client calls through it, for
// -fault.duration (20 s here, 5 minutes or more under make soak). What a
// user expects: no call fails, no client connection is closed, and memory
// stays flat.
func TestConfigChurn(t *testing.T) {
	t.Parallel()
	one := []*harness.Greeter{harness.StartGreeter(t, "v1"), harness.StartGreeter(t, "v1"), harness.StartGreeter(t, "v1")}
	two := harness.StartGreeter(t, "v2")
	cfg := churnConfig{Iface: iface, Two: two.Addr, W1: 90, W2: 10, One: []string{one[0].Addr, one[1].Addr}}
	srv := startProxyWith(t, &cfg.Listen, func(t testing.TB) *xdsapi.Resources { return cfg.resources(t) })
	cl, err := dubboclient.NewWithOptions(cfg.Listen, iface, dubboclient.Options{Timeout: 5 * time.Second, Connections: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	for i := range 20 {
		if replyFrom(cl, "warm-up") == "" {
			t.Fatalf("warm-up call %d failed", i)
		}
	}
	closed := func() float64 {
		m := srv.Metrics()
		return testutil.ToFloat64(m.DownstreamCxT.WithLabelValues("dubbo")) - testutil.ToFloat64(m.DownstreamCx.WithLabelValues("dubbo"))
	}
	closedBefore := closed()
	ld := startLoad(cl, 8)
	defer ld.finish()
	ld.more(t, 500, "before the churn")
	start := measure(t.Name())

	const tick = 60 * time.Millisecond // 1,000 a minute
	weights := [][2]int{{90, 10}, {50, 50}, {10, 90}, {70, 30}}
	endpointChanges, routeChanges := 0, 0
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for end := time.Now().Add(*churnFor); time.Now().Before(end); <-ticker.C {
		// One endpoint of cluster one is replaced by the provider it lacks.
		endpointChanges++
		k := endpointChanges % 3
		cfg.One = []string{one[k].Addr, one[(k+1)%3].Addr}
		if endpointChanges%10 == 0 {
			routeChanges++
			w := weights[routeChanges%len(weights)]
			cfg.W1, cfg.W2, cfg.Round = w[0], w[1], routeChanges
		}
		if err := srv.Apply(cfg.resources(t)); err != nil {
			t.Fatalf("change %d: %v", endpointChanges, err)
		}
	}
	ld.more(t, 200, "after the churn")
	ld.finish()
	end := measure(t.Name())
	t.Logf("%d endpoint changes and %d route changes in %v; load: %v; %v client connections closed; memory at the start %v, at the end %v",
		endpointChanges, routeChanges, *churnFor, ld, closed()-closedBefore, start, end)
	ld.check(t, "during the churn")
	if ld.v1.Load() == 0 || ld.v2.Load() == 0 {
		t.Errorf("load: %v; want both versions to have answered", ld)
	}
	if n := closed() - closedBefore; n != 0 {
		t.Errorf("%v client connections were closed during the churn", n)
	}
	if end.heap > heapFactor*start.heap+heapSlack {
		t.Errorf("live heap %d KiB after the churn, %d KiB before: not flat", end.heap>>10, start.heap>>10)
	}
	backToBaseline(t, t.Name(), start, "after the churn")
}
