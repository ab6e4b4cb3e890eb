package interop

import (
	"context"
	"strings"
	"testing"
	"text/template"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/tripletest"
)

// onePortTmpl is one dubbo listener whose routes name a Dubbo2 service
// (the greeter), a Triple one (dubbo-go's) and a plain gRPC one.
var onePortTmpl = template.Must(template.New("").Funcs(listenerFuncs).Parse(`
resources:
{{listener "rpc" "dubbo" (.Port .Listen)}}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: rpc
  virtual_hosts:
  - name: dubbo2
    domains: ["{{.Dubbo2Service}}"]
    routes:
    - name: dubbo2
      match: {prefix: ""}
      request_headers_to_add: [{header: {key: x-routed-by, value: metamesh}}]
      route: {cluster: dubbo2}
  - name: triple
    domains: ["{{.TripleService}}"]
    routes:
    - name: triple
      match: {prefix: ""}
      request_headers_to_add: [{header: {key: x-routed-by, value: metamesh}}]
      route: {cluster: triple}
  - name: grpc
    domains: ["{{.GRPCService}}"]
    routes:
    - name: grpc
      match: {prefix: ""}
      request_headers_to_add: [{header: {key: x-routed-by, value: metamesh}}]
      route: {cluster: grpc}
{{- range $name, $addr := .Clusters}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: {{$name}}
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: {{$name}}
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{$.Port $addr}}}}}
{{- end}}
`))

type onePort struct {
	Listen   string
	Clusters map[string]string // name: upstream address
}

func (onePort) Dubbo2Service() string   { return iface }
func (onePort) TripleService() string   { return tripleIface }
func (onePort) GRPCService() string     { return grpcService }
func (onePort) Port(addr string) string { return routes{}.Port(addr) }
func (o onePort) resources(t testing.TB) *xdsapi.Resources {
	t.Helper()
	return resourcesFrom(t, onePortTmpl, o)
}

// Dubbo2 and Triple on one port: one dubbo listener serves a real
// dubbo-go Dubbo2 consumer, a real dubbo-go Triple consumer and a grpc-go
// client, each routed to its own provider with the route's header, the
// connections told apart by their first byte and counted by protocol.
func TestDubbo2AndTripleOnOnePort(t *testing.T) {
	o := onePort{Listen: harness.FreeAddr(t), Clusters: map[string]string{
		"dubbo2": harness.StartGreeter(t, "v1").Addr,
		"triple": tripletest.StartProvider(t, "v1"),
		"grpc":   startGRPCEcho(t),
	}}
	srv := startProxyWith(t, o.resources(t))

	t.Run("dubbo-go Dubbo2", func(t *testing.T) {
		c := newClient(t, o.Listen, dubboclient.Options{})
		got, err := c.Attachment(context.Background(), "x-routed-by")
		if err != nil || !strings.HasSuffix(got, "|metamesh") {
			t.Fatalf("Attachment(x-routed-by) = %q, %v; want the value set by the route", got, err)
		}
		for i := range 50 {
			got, err := c.SayHello(context.Background(), payload(0, i))
			if err != nil || got != "v1|"+payload(0, i) {
				t.Fatalf("call %d = %q, %v", i, got, err)
			}
		}
	})
	t.Run("dubbo-go Triple", func(t *testing.T) {
		res := tripletest.Run(t, tripletest.Calls{Addr: o.Listen, Method: "Attachment", Arg: "x-routed-by"})
		if res.Failed > 0 || res.Sample != "v1|metamesh" {
			t.Fatalf("%v, sample %q; want v1 with the header the route set", res, res.Sample)
		}
		res = tripletest.Run(t, tripletest.Calls{Addr: o.Listen, Method: "SayHello", Arg: "x", N: 50, C: 4})
		if res.Failed > 0 || res.Replies["v1"] != 50 {
			t.Fatalf("%v; want 50 replies from v1", res)
		}
	})
	t.Run("grpc-go", func(t *testing.T) { grpcThroughProxy(t, o.Listen) })

	// Each call is counted under its own protocol.
	m := srv.Metrics()
	for _, want := range []struct {
		protocol, service, route string
		calls                    float64
	}{
		{"dubbo", iface, "dubbo2", 51},
		{"triple", tripleIface, "triple", 51},
		{"triple", grpcService, "grpc", 100},
	} {
		got := testutil.ToFloat64(m.Requests.WithLabelValues(want.protocol, want.service, want.route, want.route, "ok"))
		if got != want.calls {
			t.Errorf("metamesh_requests_total{protocol=%q, service=%q, status=ok} = %v, want %v", want.protocol, want.service, got, want.calls)
		}
	}
}
