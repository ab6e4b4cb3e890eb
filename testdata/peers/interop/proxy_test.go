// Package interop runs real dubbo-go consumers and providers through an
// in-process metamesh proxy (so the race detector covers the proxy).
package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/controlplane/kube/kubetest"
	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"

	_ "github.com/metamesh/metamesh/protocols/dubbo"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.CleanupBuilds()
	if err := kubetest.Stop(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, "kubetest: stop:", err)
		code = 1
	}
	os.Exit(code)
}

const iface = dubboclient.DefaultInterface

// routes is the proxy config of a test: the listener, a batchjob route to
// v2, and a default route split W1/W2 that sets x-routed-by.
type routes struct {
	Listen   string
	V1, V2   string
	W1, W2   int
	Mutation string
	// Policy is extra RouteAction fields of the canary route (YAML
	// lines at the action's indentation); Thresholds the circuit breaker
	// thresholds of both clusters (flow YAML); V1Extra another endpoint
	// of v1, listed first.
	Policy, Thresholds, V1Extra string
	// RateLimit is the virtual host's LocalRateLimit, Fault the canary
	// route's RoutePolicy and Outlier both clusters' outlier_detection
	// (flow YAML; the first two without "@type").
	RateLimit, Fault, Outlier string
	// Global is the virtual host's GlobalRateLimit (flow YAML without
	// "@type") and RLS the address of its rate_limit_service cluster,
	// rlsCluster.
	Global, RLS string
}

// rlsCluster is the rate-limit service's cluster name, as Aeraki's demo
// names it.
const rlsCluster = "outbound|8081||rate-limit-server.istio-system.svc.cluster.local"

// metaListener is the YAML of one listener resource, to follow
// "resources:": the meta-protocol proxy named name on 127.0.0.1:port,
// decoding codec, routed by the route configuration of the same name. It
// ends inside the proxy's typed_config, so more of its fields may follow at
// the same indent. Templates call it as {{listener name codec port}}.
func metaListener(name, codec, port string) string {
	return fmt.Sprintf(`- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: %[1]s
  address: {socket_address: {address: 127.0.0.1, port_value: %[3]s}}
  filter_chains:
  - filters:
    - name: metamesh.meta_protocol_proxy
      typed_config:
        "@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy
        codec: %[2]s
        route_config_name: %[1]s`, name, codec, port)
}

// resourcesFrom is the xDS resources that tpl writes from data; the test
// fails, showing the YAML, when they do not parse.
func resourcesFrom(t testing.TB, tpl *template.Template, data any) *xdsapi.Resources {
	t.Helper()
	var buf bytes.Buffer
	if err := tpl.Execute(&buf, data); err != nil {
		t.Fatal(err)
	}
	res, err := xdsapi.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("config: %v\n%s", err, buf.String())
	}
	return res
}

// rlsClusterYAML is the YAML of the rate-limit service's cluster
// (rlsCluster) with its one endpoint at addr, to follow "resources:".
// Templates call it as {{rlsCluster addr}}.
func rlsClusterYAML(addr string) string {
	return fmt.Sprintf(`- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: "%[1]s"
  type: STATIC
  load_assignment:
    cluster_name: "%[1]s"
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %[2]s}}}`, rlsCluster, routes{}.Port(addr))
}

// listenerFuncs gives templates metaListener as "listener" and
// rlsClusterYAML as "rlsCluster".
var listenerFuncs = template.FuncMap{"listener": metaListener, "rlsCluster": rlsClusterYAML}

var tmpl = template.Must(template.New("").Funcs(listenerFuncs).Parse(`
resources:
{{listener "dubbo" "dubbo" (.Port .Listen)}}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: dubbo
  virtual_hosts:
  - name: greetings
    domains: ["{{.Iface}}"]
    {{- if or .RateLimit .Global}}
    typed_per_filter_config:
      {{- if .RateLimit}}
      metamesh.meta_protocol_proxy: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.LocalRateLimit, {{.RateLimit}}}
      {{- end}}
      {{- if .Global}}
      metamesh.global_rate_limit: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.GlobalRateLimit, {{.Global}}}
      {{- end}}
    {{- end}}
    routes:
    - name: batchjob
      match: {prefix: "", headers: [{name: batchjob, string_match: {exact: "true"}}]}
      route: {cluster: "outbound|20880|v2|{{.Iface}}"}
    - name: canary
      match: {prefix: ""}
      {{- if .Fault}}
      typed_per_filter_config:
        metamesh.meta_protocol_proxy: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.RoutePolicy, {{.Fault}}}
      {{- end}}
      request_headers_to_add: [{header: {key: x-routed-by, value: "{{.Mutation}}"}}]
      route:
        weighted_clusters:
          clusters:
          - {name: "outbound|20880|v1|{{.Iface}}", weight: {{.W1}}}
          - {name: "outbound|20880|v2|{{.Iface}}", weight: {{.W2}}}
{{- range .PolicyLines}}
        {{.}}
{{- end}}
{{- range $subset, $addr := .Subsets}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: "outbound|20880|{{$subset}}|{{$.Iface}}"
  type: STATIC
  connect_timeout: 1s
  {{- if $.Thresholds}}
  circuit_breakers: {thresholds: [{{$.Thresholds}}]}
  {{- end}}
  {{- if $.Outlier}}
  outlier_detection: {{$.Outlier}}
  {{- end}}
  load_assignment:
    cluster_name: "outbound|20880|{{$subset}}|{{$.Iface}}"
    endpoints:
    - lb_endpoints:
      {{- if and (eq $subset "v1") $.V1Extra}}
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{$.Port $.V1Extra}}}}}
      {{- end}}
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{$.Port $addr}}}}}
{{- end}}
{{- if .RLS}}
{{rlsCluster .RLS}}
{{- end}}
`))

func (r routes) Iface() string { return iface }

func (r routes) Port(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	return addr[i+1:]
}

func (r routes) Subsets() map[string]string { return map[string]string{"v1": r.V1, "v2": r.V2} }

// PolicyLines splits Policy into lines for the template.
func (r routes) PolicyLines() []string {
	if r.Policy == "" {
		return nil
	}
	return strings.Split(r.Policy, "\n")
}

func (r routes) resources(t testing.TB) *xdsapi.Resources {
	t.Helper()
	if r.Mutation == "" {
		r.Mutation = "metamesh"
	}
	return resourcesFrom(t, tmpl, r)
}

// startProxy runs a proxy in this process on r.
func startProxy(t testing.TB, r routes) *proxy.Server {
	t.Helper()
	srv := newProxy(t, metrics.NewProxy())
	if err := srv.Apply(r.resources(t)); err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

// greeters starts the v1 and v2 providers.
func greeters(t testing.TB) (v1, v2 *harness.Greeter) {
	return harness.StartGreeter(t, "v1"), harness.StartGreeter(t, "v2")
}

func newClient(t testing.TB, addr string, o dubboclient.Options) *dubboclient.Client {
	t.Helper()
	c, err := dubboclient.NewWithOptions(addr, iface, o)
	if err != nil {
		t.Fatalf("dubbo-go client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// closedClientConns is how many client connections the proxy has seen
// end: accepted minus open.
func closedClientConns(srv *proxy.Server) float64 {
	m := srv.Metrics()
	return testutil.ToFloat64(m.DownstreamCxT.WithLabelValues("dubbo")) - testutil.ToFloat64(m.DownstreamCx.WithLabelValues("dubbo"))
}

func versionOf(reply string) string {
	v, _, _ := strings.Cut(reply, "|")
	return v
}

func payload(g, i int) string { return fmt.Sprintf("caller-%d-call-%d", g, i) }
