package interop

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
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
func redisClient(t *testing.T, addr string) *redis.Client { return redisClientPool(t, addr, 1) }

// redisClientPool is a go-redis client of up to conns connections that
// never retries by itself.
func redisClientPool(t *testing.T, addr string, conns int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1, PoolSize: conns, DisableIdentity: true,
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

// TestRedisDeadEndpoint: the cluster's first endpoint is a port nobody
// listens on; 64 go-redis callers send 640 SETs, with retries on
// connect-failure and without: every one is served by the live server,
// and the dead host is marked unreachable once.
func TestRedisDeadEndpoint(t *testing.T) {
	for _, policy := range []string{"", "retries: {attempts: 3, retryOn: [connect-failure]}"} {
		up := redispeer.Start(t)
		listen := harness.FreeAddr(t)
		srv := applyConfigDir(t, redisPolicyConfig(listen, policy, "", harness.DeadAddr(t), up.Addr))
		c := redisClientPool(t, listen, 64)
		var failed atomic.Int64
		parallel(t, 64, 10, func(g, i int) {
			key := fmt.Sprintf("dead:%d:%d", g, i)
			if err := c.Set(context.Background(), key, i, 0).Err(); err != nil {
				if failed.Add(1) == 1 {
					t.Logf("policy %q: first failure: SET %s: %v", policy, key, err)
				}
			}
		})
		unreachable := testutil.ToFloat64(srv.Metrics().Unreachable.WithLabelValues(clusterOf(t, srv)))
		t.Logf("policy %q: %d of 640 SETs failed; dead host marked unreachable %v time(s)", policy, failed.Load(), unreachable)
		if failed.Load() != 0 || unreachable != 1 {
			t.Errorf("policy %q: %d of 640 SETs failed, unreachable_total %v; want 0 and 1", policy, failed.Load(), unreachable)
		}
		if v, _ := up.Get("dead:63:9"); v != "9" {
			t.Errorf("policy %q: dead:63:9 = %q on the live server, want 9", policy, v)
		}
	}
}

// TestRedisPolicyOutlier: one of two servers is stopped and its port
// taken by a peer that resets every connection; the resets eject it (the
// client still sees every command served, by retries), and restarted on
// the same port it is readmitted after the ejection time.
func TestRedisPolicyOutlier(t *testing.T) {
	a, b := redispeer.Start(t), redispeer.Start(t)
	listen := harness.FreeAddr(t)
	srv := applyConfigDir(t, redisPolicyConfig(listen, "retries: {attempts: 1, retryOn: [connect-failure, reset]}",
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
	stopResetter := harness.StartResetter(t, b.Addr)
	// A command between the stop and the resetter's bind finds the port
	// closed: the host is then unreachable until the background reconnect
	// (after 200 ms) reaches the resetter, and only then do resets count.
	// So send until it is ejected, every command served.
	cluster := clusterOf(t, srv)
	until := sendUntilEjected(t, srv, cluster, b.Addr, func(i int) { set(i) })
	stopResetter()
	b.Restart()
	for i := range 10 {
		if s := set(100 + i); s != a {
			t.Fatalf("command %d went to %s while it is ejected", i, s)
		}
	}
	time.Sleep(time.Until(until) + 100*time.Millisecond)
	// After its ejection time the proxy may still be waiting out its
	// reconnect backoff to the restarted server: commands go to it once a
	// reconnect succeeds, within 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; set(200+i) != b; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the restarted server was not readmitted within 10 s of its ejection time")
		}
		time.Sleep(10 * time.Millisecond)
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
