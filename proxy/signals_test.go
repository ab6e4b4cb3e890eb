package proxy

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/crds/xdsapi"
	_ "github.com/metamesh/metamesh/protocols/redis"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// garbageUpstream accepts connections and answers whatever it reads with
// bytes no Dubbo decoder accepts.
func garbageUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				buf := make([]byte, 4096)
				if _, err := nc.Read(buf); err == nil {
					_, _ = nc.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
				}
				_, _ = nc.Read(buf) // until the proxy closes
			}()
		}
	}()
	return ln.Addr().String()
}

// A frame from an upstream that can't be decoded is counted, by protocol,
// as side="upstream"; the client gets a local reply.
func TestUpstreamDecodeErrorsCounted(t *testing.T) {
	srv, addr := startProxy(t, setup{V1: []string{garbageUpstream(t)}})
	c := dial(t, addr)
	if status, value := c.call(1, svc, "m"); status != 80 {
		t.Fatalf("status %d %q, want 80 (no healthy upstream) after the upstream's bad frame", status, value)
	}
	if got := testutil.ToFloat64(srv.Metrics().DecodeErrors.WithLabelValues("dubbo", "upstream")); got != 1 {
		t.Fatalf(`decode_errors_total{protocol="dubbo",side="upstream"} = %v, want 1`, got)
	}
}

// Local replies decided while routing and fault aborts are counted in
// requests_total and in the latency histogram, and logged, like requests
// an upstream answered.
func TestLocalRepliesAndAbortsObserved(t *testing.T) {
	up := startEcho(t, "v1")
	path := filepath.Join(t.TempDir(), "access.log")
	srv, addr := startProxy(t, setup{V1: []string{up.addr()}, V2: []string{freeAddr(t)},
		Fault: "fault: {abort: {status: 70, percentage: 100}}", AccessLog: "{mode: ALL, path: " + path + "}"})
	c := dial(t, addr)
	if status, _ := c.call(1, "com.example.Nope", "m"); status != 60 {
		t.Fatalf("unknown service: status %d, want 60", status)
	}
	if status, _ := c.call(2, svc, "m"); status != 70 {
		t.Fatalf("abort: status %d, want 70", status)
	}
	for _, s := range []struct{ service, route, status string }{
		{"*", "", "no_route"},
		{svc, "default", "fault_abort"},
	} {
		series := fmt.Sprintf(`metamesh_requests_total{cluster="",protocol="dubbo",route=%q,service=%q,status=%q}`, s.route, s.service, s.status)
		if got := scrape(t, srv, series); got != 1 {
			t.Errorf("%s = %v, want 1", series, got)
		}
		hist := fmt.Sprintf(`metamesh_request_duration_seconds_count{cluster="",protocol="dubbo",route=%q,service=%q}`, s.route, s.service)
		if got := scrape(t, srv, hist); got != 1 {
			t.Errorf("%s = %v, want 1", hist, got)
		}
	}
	var lines []map[string]any
	waitUntil(t, 5*time.Second, "2 access log lines", func() bool {
		lines = readJSONLines(t, path)
		return len(lines) >= 2
	})
	if lines[0]["status"] != "no_route" || lines[1]["status"] != "fault_abort" || lines[1]["method"] != "m" || lines[1]["route"] != "default" {
		t.Fatalf("access log lines %v, want no_route then fault_abort of method m on route default", lines)
	}
}

// redisConfig is one Redis listener whose route goes to one cluster.
const redisConfig = `
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: redis
  address: {socket_address: {address: 127.0.0.1, port_value: %s}}
  filter_chains:
  - filters:
    - name: metamesh.meta_protocol_proxy
      typed_config: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy, codec: redis, route_config_name: redis, default_service: cache, access_log: {mode: ALL, path: %q}}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: redis
  virtual_hosts: [{name: cache, domains: [cache], routes: [{name: all, match: {prefix: ""}, route: {cluster: cache}}]}]
- {"@type": type.googleapis.com/envoy.config.cluster.v3.Cluster, name: cache, type: STATIC, load_assignment: {cluster_name: cache, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]}}
`

// closingUpstream accepts connections and closes them at once.
func closingUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			_ = nc.Close()
		}
	}()
	return ln.Addr().String()
}

// Redis: a session reply (PING) is a request with status "session" in
// requests_total, the histogram and the access log; access log lines
// carry the command as their method.
func TestRedisSessionRepliesAndMethodObserved(t *testing.T) {
	up := closingUpstream(t)
	listen, path := freeAddr(t), filepath.Join(t.TempDir(), "access.log")
	res, err := xdsapi.Parse(fmt.Appendf(nil, redisConfig, portOf(listen), path, portOf(up)))
	if err != nil {
		t.Fatal(err)
	}
	srv := New(zaptest.NewLogger(t), metrics.NewProxy())
	if err := srv.Apply(res); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	nc, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprint(nc, "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 512)
	for !strings.Contains(string(buf), "-ERR") {
		n, err := nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			t.Fatalf("read %q: %v", buf, err)
		}
		buf = buf[:len(buf)+n]
	}
	if !strings.HasPrefix(string(buf), "+PONG\r\n-ERR") {
		t.Fatalf("replies %q, want +PONG then an error", buf)
	}
	for series, want := range map[string]float64{
		`metamesh_requests_total{cluster="",protocol="redis",route="",service="cache",status="session"}`:                     1,
		`metamesh_request_duration_seconds_count{cluster="",protocol="redis",route="",service="cache"}`:                      1,
		`metamesh_requests_total{cluster="cache",protocol="redis",route="all",service="cache",status="no_healthy_upstream"}`: 1,
		`metamesh_request_duration_seconds_count{cluster="cache",protocol="redis",route="all",service="cache"}`:              1,
	} {
		// The reply can reach the client a moment before its outcome is
		// counted.
		waitUntil(t, 5*time.Second, series, func() bool { return scrape(t, srv, series) >= want })
		if got := scrape(t, srv, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	byStatus := map[any]map[string]any{}
	waitUntil(t, 5*time.Second, "the no_healthy_upstream access log line", func() bool {
		for _, l := range readJSONLines(t, path) {
			byStatus[l["status"]] = l
		}
		return byStatus["no_healthy_upstream"] != nil
	})
	if m := byStatus["no_healthy_upstream"]["method"]; m != "get" {
		t.Errorf("GET logged with method %q, want get", m)
	}
	if l := byStatus["session"]; l == nil || l["method"] != "ping" || l["service"] != "cache" {
		t.Errorf("PING logged as %v, want a session line with method ping, service cache", l)
	}
}

// A listener's stat_prefix is the listener label of its series (Envoy's
// per-listener stats prefix); without one, its name is.
func TestStatPrefixLabelsListenerSeries(t *testing.T) {
	up := startEcho(t, "v1")
	res := setup{Listen: freeAddr(t), V1: []string{up.addr()}}.resources(t)
	f := res.Listeners[0].GetFilterChains()[0].GetFilters()[0]
	var cfg xdsapi.MetaProtocolProxy
	if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.StatPrefix = "edge"
	if err := f.GetTypedConfig().MarshalFrom(&cfg); err != nil {
		t.Fatal(err)
	}
	srv := New(zaptest.NewLogger(t), metrics.NewProxy())
	if err := srv.Apply(res); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	dial(t, srv.ListenerAddr("dubbo")).call(1, svc, "m")
	if got := scrape(t, srv, `metamesh_downstream_cx_total{listener="edge"}`); got != 1 {
		t.Errorf(`metamesh_downstream_cx_total{listener="edge"} = %v, want 1`, got)
	}
	if got := scrape(t, srv, `metamesh_downstream_cx_total{listener="dubbo"}`); got != -1 {
		t.Errorf(`metamesh_downstream_cx_total{listener="dubbo"} = %v, want no such series`, got)
	}
}
