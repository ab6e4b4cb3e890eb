package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
)

// redisPolicyConfig is one Redis port in front of the given upstream
// addresses (one subset-less cluster), with route and destination
// policies (YAML flow mappings, or "").
func redisPolicyConfig(listen string, routePolicy, destPolicy string, upstreams ...string) string {
	var eps []string
	for _, u := range upstreams {
		host, port, _ := strings.Cut(u, ":")
		eps = append(eps, fmt.Sprintf("{address: %s, ports: {redis: %s}}", host, port))
	}
	cfg := fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  ports: [{number: %s, name: redis, protocol: redis}]
  endpoints: [%s]
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  routes:
  - name: all
    route: [{destination: {host: cache.redis}}]
    %s
`, portOf(listen), strings.Join(eps, ", "), routePolicy)
	if destPolicy != "" {
		cfg += fmt.Sprintf(`---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: cache, namespace: default}
spec:
  host: cache.redis
  loadBalancer: {policy: ROUND_ROBIN}
  %s
`, destPolicy)
	}
	return cfg
}

// redisClient is a go-redis client of one connection that never retries
// by itself.
func redisClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: 1, DisableIdentity: true,
		ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestRedisPolicyTimeout: the server is paused (CLIENT PAUSE, sent to it
// directly) for longer than the route's 1s timeout: the client gets the
// proxy's timeout error at 1s ± 20%, on a connection that then carries
// the next command once the server is back.
func TestRedisPolicyTimeout(t *testing.T) {
	up := redispeer.Start(t)
	listen := harness.FreeAddr(t)
	applyConfigDir(t, redisPolicyConfig(listen, "timeout: 1s", "", up.Addr))
	c := redisClient(t, listen)
	ctx := context.Background()
	noErr(t, c.Set(ctx, "before", "1", 0).Err()) // the upstream connection is up

	direct := redisClient(t, up.Addr)
	noErr(t, direct.Do(ctx, "CLIENT", "PAUSE", 2500, "ALL").Err())
	start := time.Now()
	err := c.Get(ctx, "before").Err()
	took := time.Since(start)
	t.Logf("GET through a 1s route timeout while the server is paused: %v after %v", err, took)
	if err == nil || !strings.Contains(err.Error(), "metamesh: timeout") || !strings.Contains(err.Error(), "1s") {
		t.Fatalf("err = %v, want the proxy's timeout error naming 1s", err)
	}
	if took < 800*time.Millisecond || took > 1200*time.Millisecond {
		t.Fatalf("timeout reply after %v, want 1s ± 20%%", took)
	}
	waitFor(t, 10*time.Second, "a command to succeed once the pause is over", func() bool {
		return c.Set(ctx, "after", "2", 0).Err() == nil
	})
	if v, _ := up.Get("after"); v != "2" {
		t.Fatalf("after = %q on the server", v)
	}
	if n := c.PoolStats().TotalConns; n != 1 {
		t.Fatalf("the client opened %d connections: the timeout closed its first one", n)
	}
}

// TestRedisPolicyRetry: the cluster's first endpoint is a port nobody
// listens on; with retries on connect-failure every command is served by
// the other, and the retries are counted.
func TestRedisPolicyRetry(t *testing.T) {
	up := redispeer.Start(t)
	listen := harness.FreeAddr(t)
	srv := applyConfigDir(t, redisPolicyConfig(listen, "retries: {attempts: 1, retryOn: [connect-failure]}", "",
		harness.FreeAddr(t), up.Addr))
	c := redisClient(t, listen)
	ctx := context.Background()
	for i := range 50 {
		key := fmt.Sprintf("retried:%d", i)
		if err := c.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if v, _ := up.Get(key); v != fmt.Sprint(i) {
			t.Fatalf("%s = %q on the live server", key, v)
		}
	}
	if n := testutil.ToFloat64(srv.Metrics().Retries); n == 0 {
		t.Fatal("no retries counted: the dead endpoint was never picked")
	}
}

// TestRedisPolicyOutlier: one of two servers is stopped; its connect
// failures eject it (the client still sees every command served, by
// retries), and restarted on the same port it is readmitted after the
// ejection time.
func TestRedisPolicyOutlier(t *testing.T) {
	a, b := redispeer.Start(t), redispeer.Start(t)
	listen := harness.FreeAddr(t)
	srv := applyConfigDir(t, redisPolicyConfig(listen, "retries: {attempts: 1, retryOn: [connect-failure]}",
		"outlierDetection: {consecutiveErrors: 3, baseEjectionTime: 2s, maxEjectionPercent: 50}", a.Addr, b.Addr))
	c := redisClient(t, listen)
	ctx := context.Background()
	set := func(i int) *redispeer.Server {
		key := fmt.Sprintf("o:%d", i)
		if err := c.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		for _, s := range []*redispeer.Server{a, b} {
			if _, ok := s.Get(key); ok {
				return s
			}
		}
		t.Fatalf("%s is on neither server", key)
		return nil
	}
	b.Stop()
	for i := range 20 {
		set(i)
	}
	cluster := clusterOf(t, srv)
	until, ok := hostEjected(srv, cluster, b.Addr)
	if !ok {
		t.Fatal("the stopped server is not ejected after 20 commands")
	}
	b.Restart()
	for i := range 10 {
		if s := set(100 + i); s != a {
			t.Fatalf("command %d went to %s while it is ejected", i, s)
		}
	}
	time.Sleep(time.Until(until) + 100*time.Millisecond)
	seen := false
	for i := range 20 {
		seen = seen || set(200+i) == b
	}
	if !seen {
		t.Fatal("the restarted server was not readmitted after its ejection time")
	}
}

// clusterOf returns the name of the proxy's one cluster.
func clusterOf(t *testing.T, srv *proxy.Server) string {
	t.Helper()
	for name := range srv.Snapshot().Clusters {
		return name
	}
	t.Fatal("the proxy has no cluster")
	return ""
}
