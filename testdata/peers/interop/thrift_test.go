package interop

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	athrift "github.com/apache/thrift/lib/go/thrift"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/thrift"

	_ "github.com/metamesh/metamesh/protocols/thrift"
)

// thriftRoutes is the proxy config of a Thrift test: service Echo (the
// listener's default service) sends x-tag=batch and method ping to v2 and
// splits the rest W1/W2; service Admin goes to v2.
type thriftRoutes struct {
	Listen string
	V1, V2 string
	W1, W2 int
	// Upstream is the codec's upstream model: multiplexed or exclusive.
	Upstream string
	// Policy is extra RouteAction fields of the split route (YAML lines
	// at the action's indentation), Outlier both clusters'
	// outlier_detection (flow YAML), V1Extra another v1 endpoint.
	Policy, Outlier, V1Extra string
	// Global is the Echo host's GlobalRateLimit (flow YAML without
	// "@type"), RLS the address of its rlsCluster.
	Global, RLS string
}

var thriftTmpl = template.Must(template.New("").Funcs(listenerFuncs).Parse(`
resources:
{{listener "thrift" "thrift" (.Port .Listen)}}
        codec_config: {onewayMethods: [fire], upstream: {{.Upstream}}}
        default_service: Echo
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: thrift
  virtual_hosts:
  - name: echo
    domains: ["Echo"]
    {{- if .Global}}
    typed_per_filter_config:
      metamesh.global_rate_limit: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.GlobalRateLimit, {{.Global}}}
    {{- end}}
    routes:
    - name: batch
      match: {prefix: "", headers: [{name: x-tag, string_match: {exact: "batch"}}]}
      route: {cluster: "outbound|9090|v2|echo"}
    - name: ping
      match: {prefix: "", headers: [{name: method, string_match: {exact: "ping"}}]}
      route: {cluster: "outbound|9090|v2|echo"}
    - name: split
      match: {prefix: ""}
      route:
        weighted_clusters:
          clusters:
          - {name: "outbound|9090|v1|echo", weight: {{.W1}}}
          - {name: "outbound|9090|v2|echo", weight: {{.W2}}}
{{- range .PolicyLines}}
        {{.}}
{{- end}}
  - name: admin
    domains: ["Admin"]
    routes:
    - name: admin
      match: {prefix: ""}
      route: {cluster: "outbound|9090|v2|echo"}
{{- range $subset, $addr := .Subsets}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: "outbound|9090|{{$subset}}|echo"
  type: STATIC
  connect_timeout: 1s
  {{- if $.Outlier}}
  outlier_detection: {{$.Outlier}}
  {{- end}}
  load_assignment:
    cluster_name: "outbound|9090|{{$subset}}|echo"
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

func (r thriftRoutes) Port(addr string) string { return routes{}.Port(addr) }

func (r thriftRoutes) Subsets() map[string]string { return map[string]string{"v1": r.V1, "v2": r.V2} }

// PolicyLines splits Policy into lines for the template.
func (r thriftRoutes) PolicyLines() []string { return routes{Policy: r.Policy}.PolicyLines() }

// startThriftProxy starts the v1 and v2 servers speaking combo and a proxy
// in front of them with r's weights and upstream model; it returns the
// proxy's address and the proxy.
func startThriftProxy(t testing.TB, r thriftRoutes, combo thrift.Combo) (listen string, v1, v2 *thrift.Server, srv *proxy.Server) {
	t.Helper()
	v1, v2 = thrift.StartServer(t, "v1", combo), thrift.StartServer(t, "v2", combo)
	r.Listen, r.V1, r.V2 = harness.FreeAddr(t), v1.Addr, v2.Addr
	res := resourcesFrom(t, thriftTmpl, r)
	srv = newProxy(t, metrics.NewProxy())
	if err := srv.Apply(res); err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
	})
	return r.Listen, v1, v2, srv
}

// want is the reply of server version to msg over combo (tag is the x-tag
// THeader info header sent, if any).
func want(combo thrift.Combo, version, msg, tag string) string {
	if combo.Header() {
		return version + "|" + msg + "|" + tag
	}
	return version + "|" + msg
}

func TestThriftThroughProxy(t *testing.T) {
	for _, combo := range thrift.Combos {
		t.Run(combo.String(), func(t *testing.T) {
			listen, v1, v2, srv := startThriftProxy(t, thriftRoutes{W1: 100, Upstream: "multiplexed"}, combo)
			ctx := context.Background()

			t.Run("sequential", func(t *testing.T) {
				c := thrift.Dial(t, listen, combo)
				for i := range 200 {
					got, err := c.Echo(ctx, payload(0, i))
					if err != nil || got != want(combo, "v1", payload(0, i), "") {
						t.Fatalf("echo %d = %q, %v", i, got, err)
					}
				}
			})
			t.Run("16 concurrent connections", func(t *testing.T) {
				clients := make([]*thrift.Client, 16)
				for g := range clients {
					clients[g] = thrift.Dial(t, listen, combo)
				}
				var bad atomic.Int64
				parallel(t, len(clients), 100, func(g, i int) {
					got, err := clients[g].Echo(ctx, payload(g, i))
					if err != nil || got != want(combo, "v1", payload(g, i), "") {
						if bad.Add(1) <= 5 {
							t.Errorf("caller %d call %d = %q, %v", g, i, got, err)
						}
					}
				})
			})
			t.Run("route by method", func(t *testing.T) {
				c := thrift.Dial(t, listen, combo)
				for i := range 20 {
					got, err := c.Ping(ctx, payload(0, i))
					if err != nil || got != want(combo, "v2", payload(0, i), "") {
						t.Fatalf("ping %d = %q, %v; want v2", i, got, err)
					}
					got, err = c.Echo(ctx, payload(0, i))
					if err != nil || got != want(combo, "v1", payload(0, i), "") {
						t.Fatalf("echo %d = %q, %v; want v1", i, got, err)
					}
				}
			})
			if combo.Header() {
				t.Run("route by THeader header", func(t *testing.T) {
					c := thrift.Dial(t, listen, combo)
					batch, other := thrift.WithTag(ctx, "batch"), thrift.WithTag(ctx, "Other")
					for i := range 20 {
						got, err := c.Echo(batch, payload(0, i))
						if err != nil || got != want(combo, "v2", payload(0, i), "batch") {
							t.Fatalf("x-tag batch: echo %d = %q, %v; want v2", i, got, err)
						}
						got, err = c.Echo(other, payload(0, i))
						if err != nil || got != want(combo, "v1", payload(0, i), "Other") {
							t.Fatalf("x-tag Other: echo %d = %q, %v; want v1", i, got, err)
						}
					}
				})
			}
			t.Run("multiplexed", func(t *testing.T) {
				c := thrift.DialMultiplexed(t, listen, combo, "Echo")
				if got, err := c.Echo(ctx, "m"); err != nil || got != want(combo, "v1", "m", "") {
					t.Fatalf("Echo:echo = %q, %v; want v1", got, err)
				}
				if got, err := c.Ping(ctx, "m"); err != nil || got != want(combo, "v2", "m", "") {
					t.Fatalf("Echo:ping = %q, %v; want v2", got, err)
				}
				// Admin is routed to v2 by its own virtual host: the
				// service came from the multiplexed name.
				if got, err := c.Admin.Version(ctx); err != nil || got != "v2" {
					t.Fatalf("Admin:version = %q, %v; want v2", got, err)
				}
			})
			t.Run("no route", func(t *testing.T) {
				c := thrift.DialMultiplexed(t, listen, combo, "Missing")
				_, err := c.Echo(ctx, "x")
				var ae athrift.TApplicationException
				if !errors.As(err, &ae) || ae.TypeId() != athrift.UNKNOWN_METHOD || !strings.Contains(ae.Error(), `"Missing"`) {
					t.Fatalf("err = %v (%T), want a TApplicationException UNKNOWN_METHOD naming service \"Missing\"", err, err)
				}
				if got, err := c.Admin.Version(ctx); err != nil || got != "v2" {
					t.Fatalf("the connection did not survive the error reply: %q, %v", got, err)
				}
			})
			t.Run("oneway interleaved", func(t *testing.T) {
				testOneway(t, listen, combo, v1, v2, srv, 250)
			})
		})
	}
}

// testOneway sends perConn oneway calls on each of 8 connections with a
// two-way call after every fourth, checks every two-way reply, waits for
// the servers to count every oneway call, and checks that no request is
// left in flight in the proxy.
//
// apache/thrift v0.25.0's Go TStandardClient writes a oneway call with
// message type CALL (1), not ONEWAY (4); the proxy knows "fire" is oneway
// from the codec's onewayMethods, so it never waits for a reply to it.
func testOneway(t *testing.T, listen string, combo thrift.Combo, v1, v2 *thrift.Server, srv *proxy.Server, perConn int) {
	const conns = 8
	before := v1.Oneway() + v2.Oneway()
	clients := make([]*thrift.Client, conns)
	for g := range clients {
		clients[g] = thrift.Dial(t, listen, combo)
	}
	ctx := context.Background()
	var bad atomic.Int64
	parallel(t, conns, perConn, func(g, i int) {
		if err := clients[g].Fire(ctx, payload(g, i)); err != nil {
			if bad.Add(1) <= 5 {
				t.Errorf("caller %d fire %d: %v", g, i, err)
			}
			return
		}
		if i%4 == 3 {
			got, err := clients[g].Echo(ctx, payload(g, i))
			if err != nil || got != want(combo, "v1", payload(g, i), "") {
				if bad.Add(1) <= 5 {
					t.Errorf("caller %d echo %d = %q, %v", g, i, got, err)
				}
			}
		}
	})
	if bad.Load() > 0 {
		t.Fatalf("%d failed calls", bad.Load())
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("the servers to count %d oneway calls", conns*perConn), func() bool {
		return v1.Oneway()+v2.Oneway()-before == int64(conns*perConn)
	})
	// Every two-way call was answered, so nothing may still be in flight.
	if n := testutil.ToFloat64(srv.Metrics().Active.WithLabelValues("thrift")); n != 0 {
		t.Fatalf("metamesh_requests_active = %v after all replies: oneway calls hold slots", n)
	}
}

// TestThriftOnewayMemoryFlat sends 10,000 oneway calls interleaved with
// two-way calls on the same connections and checks that the proxy's live
// heap after them is what it was after a warm-up of 2,000: a oneway call
// holds nothing once forwarded. (The proxy runs in this process, so the
// heap is the proxy's plus the test's own clients and servers, which are
// the same before and after.)
func TestThriftOnewayMemoryFlat(t *testing.T) {
	combo := thrift.Combos[0]
	listen, v1, v2, srv := startThriftProxy(t, thriftRoutes{W1: 100, Upstream: "multiplexed"}, combo)
	testOneway(t, listen, combo, v1, v2, srv, 250)
	base := liveHeap()
	testOneway(t, listen, combo, v1, v2, srv, 1250)
	after := liveHeap()
	growth := int64(after) - int64(base)
	t.Logf("live heap after 2,000 oneway calls: %d KiB; after 10,000 more: %d KiB (growth %d KiB)", base>>10, after>>10, growth>>10)
	// A leaked slot holds a call and its frame copy (several hundred
	// bytes): 10,000 of them are megabytes.
	if growth > 2<<20 {
		t.Fatalf("live heap grew %d KiB over 10,000 oneway calls", growth>>10)
	}
}

func TestThriftExclusiveUpstream(t *testing.T) {
	combo := thrift.Combos[0]
	listen, v1, v2, srv := startThriftProxy(t, thriftRoutes{W1: 100, Upstream: "exclusive"}, combo)
	clients := make([]*thrift.Client, 8)
	for g := range clients {
		clients[g] = thrift.Dial(t, listen, combo)
	}
	var bad atomic.Int64
	parallel(t, len(clients), 200, func(g, i int) {
		got, err := clients[g].Echo(context.Background(), payload(g, i))
		if err != nil || got != want(combo, "v1", payload(g, i), "") {
			if bad.Add(1) <= 5 {
				t.Errorf("caller %d call %d = %q, %v", g, i, got, err)
			}
		}
	})
	// Concurrent calls on exclusive connections need several of them.
	cx := testutil.ToFloat64(srv.Metrics().UpstreamCx.WithLabelValues(v1.Addr))
	t.Logf("upstream connections to v1: %v", cx)
	if cx < 2 {
		t.Errorf("upstream connections to v1 = %v; exclusive mode with 8 concurrent callers should open several", cx)
	}
	testOneway(t, listen, combo, v1, v2, srv, 100)
}

func TestThriftWeightedSplit(t *testing.T) {
	combo := thrift.Combos[0]
	listen, _, _, _ := startThriftProxy(t, thriftRoutes{W1: 80, W2: 20, Upstream: "multiplexed"}, combo)
	clients := make([]*thrift.Client, 16)
	for g := range clients {
		clients[g] = thrift.Dial(t, listen, combo)
	}
	const calls = 2000
	var v1n, v2n atomic.Int64
	parallel(t, len(clients), calls/len(clients), func(g, i int) {
		got, err := clients[g].Echo(context.Background(), payload(g, i))
		switch {
		case err == nil && got == want(combo, "v1", payload(g, i), ""):
			v1n.Add(1)
		case err == nil && got == want(combo, "v2", payload(g, i), ""):
			v2n.Add(1)
		default:
			t.Errorf("caller %d call %d = %q, %v", g, i, got, err)
		}
	})
	share := float64(v1n.Load()) / float64(v1n.Load()+v2n.Load()) * 100
	t.Logf("v1 %d, v2 %d: v1 share %.1f%%", v1n.Load(), v2n.Load(), share)
	if share < 75 || share > 85 {
		t.Fatalf("v1 share %.1f%%, want 80 ± 5", share)
	}
}
