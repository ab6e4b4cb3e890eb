package lprpc_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/examples/lprpc"
	"github.com/metamesh/metamesh/examples/lprpc/peer"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// config is what an operator writes: the codec selected by an
// ApplicationProtocol, a service on that protocol with subsets a and b,
// and a MetaRouter sending x-tenant=batch to b and the rest 80/20.
const config = `
apiVersion: metamesh.io/v1alpha1
kind: ApplicationProtocol
metadata: {name: lprpc}
spec: {codec: lprpc, codecConfig: {maxFrameBytes: 65536}}
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.example]
  ports:
  - {number: {{PORT}}, name: rpc, protocol: lprpc}
  endpoints:
  - {address: 127.0.0.1, ports: {rpc: {{A}}}, labels: {version: a}}
  - {address: 127.0.0.1, ports: {rpc: {{B}}}, labels: {version: b}}
---
# A second service on the same port: lprpc frames name their service, so
# a port carries several (and a service it doesn't carry has no route).
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: other, namespace: default}
spec:
  hosts: [other.example]
  ports:
  - {number: {{PORT}}, name: rpc, protocol: lprpc}
  endpoints:
  - {address: 127.0.0.1, ports: {rpc: {{A}}}}
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: echo, namespace: default}
spec:
  host: echo.example
  subsets:
  - {name: a, labels: {version: a}}
  - {name: b, labels: {version: b}}
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.example]
  routes:
  - name: batch
    match: {attributes: {x-tenant: {exact: batch}}}
    route:
    - destination: {host: echo.example, subset: b}
    requestMutation: [{key: x-routed-by, value: metamesh}]
  - name: split
    route:
    - {destination: {host: echo.example, subset: a}, weight: 80}
    - {destination: {host: echo.example, subset: b}, weight: 20}
    requestMutation: [{key: x-routed-by, value: metamesh}]
    responseMutation: [{key: x-proxied, value: "yes"}]
`

// TestThroughProxy runs the real proxy, configured by the real translator
// from the YAML above, between peer's client and two peer servers. The
// codec is this package, registered from outside metamesh: nothing in the
// core knows about it.
func TestThroughProxy(t *testing.T) {
	servers := map[string]*peer.Server{}
	for _, name := range []string{"a", "b"} {
		s, err := peer.Serve("127.0.0.1:0", func(req *peer.Request) ([]protocols.Header, []byte, uint16) {
			return []protocols.Header{{Key: "served-by", Value: name}, {Key: "saw-routed-by", Value: req.Header("x-routed-by")}},
				append([]byte(name+"|"), req.Body...), 0
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		servers[name] = s
	}
	listen := freePort(t)
	srv := startProxy(t, strings.NewReplacer("{{PORT}}", port(listen), "{{A}}", port(servers["a"].Addr()), "{{B}}", port(servers["b"].Addr())).Replace(config))

	c, err := peer.Dial(listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	call := func(tenant, body string) *peer.Response {
		t.Helper()
		hs := []protocols.Header{{Key: "service", Value: "echo.example"}, {Key: "method", Value: "Say"}}
		if tenant != "" {
			hs = append(hs, protocols.Header{Key: "x-tenant", Value: tenant})
		}
		r, err := c.Call(hs, []byte(body))
		if err != nil {
			t.Fatalf("call: %v", err)
		}
		return r
	}

	t.Run("header split", func(t *testing.T) {
		for i := range 50 {
			r := call("batch", fmt.Sprint(i))
			if r.Status != 0 || r.Header("served-by") != "b" || string(r.Body) != "b|"+fmt.Sprint(i) {
				t.Fatalf("x-tenant=batch call %d: status %d, served by %q, body %q; want b", i, r.Status, r.Header("served-by"), r.Body)
			}
			if got := r.Header("saw-routed-by"); got != "metamesh" {
				t.Fatalf("the server saw x-routed-by %q: request mutation didn't reach it", got)
			}
		}
	})
	t.Run("weights 80/20", func(t *testing.T) {
		const n = 1000
		count := map[string]int{}
		for i := range n {
			r := call("interactive", fmt.Sprint(i))
			if r.Status != 0 {
				t.Fatalf("call %d: status %d %q", i, r.Status, r.Body)
			}
			if r.Header("x-proxied") != "yes" {
				t.Fatalf("call %d: response headers %q lack the response mutation", i, r.Headers)
			}
			count[r.Header("served-by")]++
		}
		// 20% of 1000 has a standard deviation of about 13: 130..270 is
		// more than five of them either side.
		if count["a"]+count["b"] != n || count["b"] < 130 || count["b"] > 270 {
			t.Fatalf("served by %v; want about 800 a and 200 b", count)
		}
		t.Logf("served by %v", count)
	})
	t.Run("heartbeat answered by the proxy", func(t *testing.T) {
		before := servers["a"].Heartbeats.Load() + servers["b"].Heartbeats.Load()
		for range 5 {
			if err := c.Heartbeat(); err != nil {
				t.Fatal(err)
			}
		}
		if after := servers["a"].Heartbeats.Load() + servers["b"].Heartbeats.Load(); after != before {
			t.Fatalf("servers saw %d heartbeats; the proxy must answer them", after-before)
		}
	})
	t.Run("route by service", func(t *testing.T) {
		r, err := c.Call([]protocols.Header{{Key: "service", Value: "other.example"}, {Key: "x-tenant", Value: "batch"}}, []byte("x"))
		if err != nil || r.Status != 0 || r.Header("served-by") != "a" {
			t.Fatalf("other.example: %v, %+v; want served by a, its only endpoint", err, r)
		}
	})
	t.Run("unknown service gets a native error", func(t *testing.T) {
		r, err := c.Call([]protocols.Header{{Key: "service", Value: "nobody.example"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != lprpc.StatusNoRoute || !strings.Contains(string(r.Body), "nobody.example") {
			t.Fatalf("status %d, body %q; want %d naming the service", r.Status, r.Body, lprpc.StatusNoRoute)
		}
	})
	t.Run("concurrent callers share upstream connections", func(t *testing.T) {
		errs := make(chan error, 8)
		for g := range 8 {
			go func() {
				cg, err := peer.Dial(listen)
				if err != nil {
					errs <- err
					return
				}
				defer cg.Close()
				for i := range 100 {
					body := fmt.Sprintf("%d-%d", g, i)
					r, err := cg.Call([]protocols.Header{{Key: "service", Value: "echo.example"}, {Key: "x-tenant", Value: "batch"}}, []byte(body))
					if err != nil || string(r.Body) != "b|"+body {
						errs <- fmt.Errorf("caller %d call %d: %v %q", g, i, err, r.Body)
						return
					}
				}
				errs <- nil
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	})
	if n := testutil.CollectAndCount(srv.Metrics().Requests); n == 0 {
		t.Error("no metamesh_requests_total series for lprpc traffic")
	}
	if v := testutil.ToFloat64(srv.Metrics().LocalReplies.WithLabelValues(lprpc.Name, protocols.ReasonNoRoute.String())); v != 1 {
		t.Errorf("metamesh_local_replies_total{protocol=lprpc,reason=no_route} = %v, want 1", v)
	}
}

// startProxy loads cfg as a config folder, translates it and applies it to
// a new proxy, the way metamesh run does.
func startProxy(t *testing.T, cfg string) *proxy.Server {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lprpc.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, problems := file.Load(dir)
	if err := problems.Err(); err != nil {
		t.Fatalf("config: %v", err)
	}
	out := translate.Translate(&translate.Input{
		ServiceEntries:       loaded.ServiceEntries,
		DestinationPolicies:  loaded.DestinationPolicies,
		MetaRouters:          loaded.MetaRouters,
		ApplicationProtocols: loaded.ApplicationProtocols,
	}, translate.Options{
		ListenAddress: "127.0.0.1",
		KnownCodec:    func(name string) bool { return slices.Contains(protocols.Names(), name) },
	})
	for key, conds := range out.Status {
		for _, c := range conds {
			if c.Status != "True" {
				t.Fatalf("%s: %s is %s: %s: %s", key, c.Type, c.Status, c.Reason, c.Message)
			}
		}
	}
	srv := proxy.New(zaptest.NewLogger(t), metrics.NewProxy())
	if err := srv.Apply(out.Resources); err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("proxy shutdown: %v", err)
		}
	})
	return srv
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
