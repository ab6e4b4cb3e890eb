package meshcapture

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
)

// Two Redis services on port 6379, each with its own redis-server: a
// port conflict for proxies that bind it, none for a sidecar (the
// capture-only translation, docs/mesh-mode.md), which tells them apart by
// the address the client dialed. Each client's commands are served by the
// proxy (counted under its service) and land on the server it dialed.
func TestTwoRedisServicesOnOnePortAreToldApartByAddress(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (make test installs Debian's redis-server): ", err)
	}
	n := newNet(t)
	consumer, a, b := n.Host("consumer"), n.Host("a"), n.Host("b")
	aDirect, bDirect := startRedis(t, a), startRedis(t, b)
	ctx := context.Background()
	applyRules(t, consumer)
	proxy := startSidecar(t, consumer, fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache-a, namespace: default}
spec:
  hosts: [cache-a.redis.test]
  ports: [{number: %[3]d, name: redis, protocol: redis}]
  endpoints: [{address: %[1]s}]
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache-b, namespace: default}
spec:
  hosts: [cache-b.redis.test]
  ports: [{number: %[3]d, name: redis, protocol: redis}]
  endpoints: [{address: %[2]s}]
`, a.Addr, b.Addr, redisPort))

	for _, s := range []struct {
		host    string
		service string
	}{{a.Addr.String(), "cache-a.redis.test"}, {b.Addr.String(), "cache-b.redis.test"}} {
		c := goRedis(consumer, net.JoinHostPort(s.host, fmt.Sprint(redisPort)))
		for i := 0; i < 3; i++ {
			if err := c.Set(ctx, fmt.Sprintf("k%d", i), s.service, 0).Err(); err != nil {
				t.Fatalf("set through capture to %s: %v", s.host, err)
			}
		}
		_ = c.Close()
	}
	if got, err := aDirect.Get(ctx, "k0").Result(); err != nil || got != "cache-a.redis.test" {
		t.Errorf("k0 on a's server: %q, %v; want cache-a.redis.test", got, err)
	}
	if got, err := bDirect.Get(ctx, "k0").Result(); err != nil || got != "cache-b.redis.test" {
		t.Errorf("k0 on b's server: %q, %v; want cache-b.redis.test", got, err)
	}
	for _, svc := range []string{"cache-a.redis.test", "cache-b.redis.test"} {
		labels := `{cluster="outbound|6379||` + svc + `",protocol="redis",route="default",service="` + svc + `",status="ok"}`
		if got := proxy.metric("metamesh_requests_total", labels); got < 3 {
			t.Errorf("the proxy served metamesh_requests_total%s = %v, want at least the 3 SETs", labels, got)
		}
	}
}
