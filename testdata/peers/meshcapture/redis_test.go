package meshcapture

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/proxy/capture/netnstest"
)

const redisPort = 6379

// startRedis runs a redis-server on h's address until the test ends and
// returns a go-redis client talking to it from h itself, bypassing any
// proxy.
func startRedis(t *testing.T, h *netnstest.Host) *redis.Client {
	t.Helper()
	return startRedisOn(t, h, h.Addr.String())
}

// startRedisOn is startRedis listening on the address bind, which its
// client dials.
func startRedisOn(t *testing.T, h *netnstest.Host, bind string) *redis.Client {
	t.Helper()
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(redisPort), "--bind", bind,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning")
	h.Start(t, cmd)
	c := goRedis(h, net.JoinHostPort(bind, fmt.Sprint(redisPort)))
	t.Cleanup(func() { _ = c.Close() })
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server in %s did not start", h.Name)
		}
	}
	return c
}

// goRedis is an unmodified go-redis client for addr whose connections
// are opened in h.
func goRedis(h *netnstest.Host, addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1,
		Dialer: func(_ context.Context, network, addr string) (net.Conn, error) { return h.Dial(network, addr) }})
}

func TestRedisClientDialingAServerIsRoutedByKey(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (make test installs Debian's redis-server): ", err)
	}
	n := newNet(t)
	consumer, rest, users := n.Host("consumer"), n.Host("rest"), n.Host("users")
	restDirect, usersDirect := startRedis(t, rest), startRedis(t, users)
	dst := net.JoinHostPort(rest.Addr.String(), fmt.Sprint(redisPort))
	ctx := context.Background()
	applyRules(t, consumer, redisPort)
	startSidecar(t, consumer, fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis.test]
  ports:
  - {number: %[3]d, name: redis, protocol: redis}
  endpoints:
  - {address: %[1]s, labels: {shard: rest}}
  - {address: %[2]s, labels: {shard: users}}
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: cache, namespace: default}
spec:
  host: cache.redis.test
  subsets:
  - {name: rest, labels: {shard: rest}}
  - {name: users, labels: {shard: users}}
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis.test]
  routes:
  - name: users
    match: {attributes: {key: {prefix: "user:"}}}
    route: [{destination: {host: cache.redis.test, subset: users}}]
  - name: rest
    route: [{destination: {host: cache.redis.test, subset: rest}}]
`, rest.Addr, users.Addr, redisPort))

	// The proxy runs but the rules leave port 6379 alone: a user: key is
	// stored where the client dialed. What follows is the capture's doing.
	before := goRedis(consumer, dst)
	if err := before.Set(ctx, "user:0", "uncaptured", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_ = before.Close()
	if got, err := restDirect.Get(ctx, "user:0").Result(); err != nil || got != "uncaptured" {
		t.Fatalf("uncaptured, user:0 on the dialed server: %q, %v", got, err)
	}

	applyRules(t, consumer)
	c := goRedis(consumer, dst)
	defer c.Close()
	for i := 1; i <= 5; i++ {
		if err := c.Set(ctx, fmt.Sprintf("user:%d", i), "u", 0).Err(); err != nil {
			t.Fatalf("set user:%d: %v", i, err)
		}
		if err := c.Set(ctx, fmt.Sprintf("order:%d", i), "o", 0).Err(); err != nil {
			t.Fatalf("set order:%d: %v", i, err)
		}
	}
	if got, err := c.Get(ctx, "user:3").Result(); err != nil || got != "u" {
		t.Fatalf("get user:3 through capture: %q, %v", got, err)
	}
	for _, s := range []struct {
		name    string
		c       *redis.Client
		keys    []string
		absence []string
	}{
		{"users", usersDirect, []string{"user:1", "user:5"}, []string{"order:1", "order:5", "user:0"}},
		{"rest", restDirect, []string{"order:1", "order:5", "user:0"}, []string{"user:1", "user:5"}},
	} {
		for _, k := range s.keys {
			if n, err := s.c.Exists(ctx, k).Result(); err != nil || n != 1 {
				t.Errorf("%s is not on %s: %d, %v", k, s.name, n, err)
			}
		}
		for _, k := range s.absence {
			if n, err := s.c.Exists(ctx, k).Result(); err != nil || n != 0 {
				t.Errorf("%s is on %s: %d, %v", k, s.name, n, err)
			}
		}
	}
}
