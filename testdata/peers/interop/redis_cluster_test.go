package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
)

// clusterTmpl puts a Redis Cluster behind one port: its first node is
// the only seed the proxy is given.
var clusterTmpl = template.Must(template.New("").Parse(`
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  ports: [{number: {{.Port}}, name: redis, protocol: redis}]
  endpoints:
  - {address: 127.0.0.1, ports: {redis: {{.Seed}}}}
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: cache, namespace: default}
spec:
  host: cache.redis
  redisCluster: {readPolicy: {{.Policy}}, refreshInterval: 1s}
{{if .Timeout}}---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  routes:
  - name: all
    timeout: {{.Timeout}}
    retries: {attempts: 1, retryOn: [connect-failure]}
    route: [{destination: {host: cache.redis}}]
{{end}}`))

// clusterProxy is a proxy in front of a Redis Cluster.
type clusterProxy struct {
	listen  string
	metrics *metrics.Proxy
}

// startClusterProxy starts a proxy for c with read policy policy; with a
// timeout, through a route with that timeout and retries (the proxy's
// retrying path).
func startClusterProxy(t *testing.T, c *redispeer.Cluster, policy string, timeout ...string) *clusterProxy {
	t.Helper()
	p := &clusterProxy{listen: harness.FreeAddr(t), metrics: metrics.NewProxy()}
	var buf bytes.Buffer
	vars := map[string]string{"Port": portOf(p.listen), "Seed": c.Nodes[0].Port(), "Policy": policy, "Timeout": ""}
	if len(timeout) > 0 {
		vars["Timeout"] = timeout[0]
	}
	err := clusterTmpl.Execute(&buf, vars)
	noErr(t, err)
	dir := t.TempDir()
	noErr(t, os.WriteFile(filepath.Join(dir, "cache.yaml"), buf.Bytes(), 0o644))
	cfg, problems := file.Load(dir)
	noErr(t, problems.Err())
	out := translate.Translate(&translate.Input{ServiceEntries: cfg.ServiceEntries, DestinationPolicies: cfg.DestinationPolicies, MetaRouters: cfg.MetaRouters},
		translate.Options{ListenAddress: "127.0.0.1", KnownCodec: func(n string) bool { return slices.Contains(protocols.Names(), n) }})
	srv := newProxy(t, p.metrics)
	noErr(t, srv.Apply(out.Resources))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return p
}

// client is a plain (non-cluster) go-redis client of the proxy.
func (p *clusterProxy) client(t *testing.T, size int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.listen, Protocol: 2, MaxRetries: -1, PoolSize: size})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redirects is how many redirects of kind the proxy followed.
func (p *clusterProxy) redirects(kind string) float64 {
	return testutil.ToFloat64(p.metrics.RedisCluster.Redirects.WithLabelValues("outbound|"+portOf(p.listen)+"||cache.redis", kind, "followed"))
}

func TestRedisCluster(t *testing.T) {
	rc := redispeer.StartCluster(t, 3, 1)
	p := startClusterProxy(t, rc, "MASTER")
	c := p.client(t, 8)
	ctx := context.Background()

	t.Run("10000 keys over all slots", func(t *testing.T) {
		const n, batch = 10000, 500
		for from := 0; from < n; from += batch {
			_, err := c.Pipelined(ctx, func(pl redis.Pipeliner) error {
				for i := from; i < from+batch; i++ {
					pl.Set(ctx, fmt.Sprintf("key:%d", i), i, 0)
				}
				return nil
			})
			noErr(t, err)
		}
		for from := 0; from < n; from += batch {
			cmds, err := c.Pipelined(ctx, func(pl redis.Pipeliner) error {
				for i := from; i < from+batch; i++ {
					pl.Get(ctx, fmt.Sprintf("key:%d", i))
				}
				return nil
			})
			noErr(t, err)
			for j, cmd := range cmds {
				if got := cmd.(*redis.StringCmd).Val(); got != fmt.Sprint(from+j) {
					t.Fatalf("GET key:%d = %q", from+j, got)
				}
			}
		}
		// Each key lives on the primary of its slot (a direct GET
		// there answers it, not MOVED), and every primary has some.
		total := int64(0)
		for _, node := range rc.Primaries() {
			size := val(t, node.Client.DBSize(ctx))
			if size == 0 {
				t.Errorf("%s holds no key", node)
			}
			total += size
		}
		if total != n {
			t.Errorf("the primaries hold %d keys, want %d", total, n)
		}
		for i := 0; i < n; i += 97 {
			k := fmt.Sprintf("key:%d", i)
			slot := val(t, rc.Nodes[0].Client.ClusterKeySlot(ctx, k))
			found := 0
			for _, node := range rc.Primaries() {
				if v, err := node.Client.Get(ctx, k).Result(); err == nil && v == fmt.Sprint(i) {
					found++
				}
			}
			if found != 1 {
				t.Fatalf("%s (slot %d) found on %d primaries", k, slot, found)
			}
		}
	})
	t.Run("MGET and MSET across slots, in order", func(t *testing.T) {
		var kv []any
		var keys []string
		for i := range 20 {
			k := fmt.Sprintf("multi:%d", i)
			keys = append(keys, k)
			kv = append(kv, k, "v"+fmt.Sprint(i))
		}
		noErr(t, c.MSet(ctx, kv...).Err())
		slices.Reverse(keys)
		keys = append(keys, "multi:absent")
		got := val(t, c.MGet(ctx, keys...))
		for i, k := range keys[:20] {
			if got[i] != "v"+strings.TrimPrefix(k, "multi:") {
				t.Fatalf("MGET %v = %v", keys, got)
			}
		}
		if got[20] != nil {
			t.Fatalf("MGET of an absent key: %v", got[20])
		}
		if n := val(t, c.Del(ctx, keys...)); n != 20 {
			t.Fatalf("DEL = %d", n)
		}
	})
	t.Run("hash tags keep keys together", func(t *testing.T) {
		noErr(t, c.Set(ctx, "{user:1}:cart", "c", 0).Err())
		noErr(t, c.Rename(ctx, "{user:1}:cart", "{user:1}:order").Err())
		noErr(t, c.SAdd(ctx, "{user:1}:a", "x", "y").Err())
		noErr(t, c.SAdd(ctx, "{user:1}:b", "y", "z").Err())
		if got := val(t, c.SUnionStore(ctx, "{user:1}:u", "{user:1}:a", "{user:1}:b")); got != 3 {
			t.Fatalf("SUNIONSTORE = %d", got)
		}
		if got := val(t, c.Get(ctx, "{user:1}:order")); got != "c" {
			t.Fatalf("GET after RENAME = %q", got)
		}
	})
	t.Run("CROSSSLOT", func(t *testing.T) {
		noErr(t, c.Set(ctx, "a", "1", 0).Err())
		err := c.Rename(ctx, "a", "b").Err()
		if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT ") {
			t.Fatalf("RENAME across slots: %v, want redis-server's CROSSSLOT", err)
		}
		err = c.SUnionStore(ctx, "{x}d", "a", "b").Err()
		if err == nil || !strings.HasPrefix(err.Error(), "CROSSSLOT ") {
			t.Fatalf("SUNIONSTORE across slots: %v", err)
		}
	})
	t.Run("transaction on one slot", func(t *testing.T) {
		cmds, err := c.TxPipelined(ctx, func(pl redis.Pipeliner) error {
			pl.Set(ctx, "{tx}n", 10, 0)
			pl.IncrBy(ctx, "{tx}n", 5)
			pl.Get(ctx, "{tx}m")
			return nil
		})
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		if got := cmds[1].(*redis.IntCmd).Val(); got != 15 {
			t.Fatalf("INCRBY in the transaction = %d", got)
		}
		err = c.Watch(ctx, func(tx *redis.Tx) error {
			_, err := tx.TxPipelined(ctx, func(pl redis.Pipeliner) error { pl.Incr(ctx, "{tx}n"); return nil })
			return err
		}, "{tx}n")
		noErr(t, err)
		if got := val(t, c.Get(ctx, "{tx}n")); got != "16" {
			t.Fatalf("after WATCH and EXEC: %q", got)
		}
	})
	t.Run("redis-cli", func(t *testing.T) {
		cli := func(args ...string) string {
			out, err := exec.Command("redis-cli", append([]string{"-p", portOf(p.listen)}, args...)...).CombinedOutput()
			noErr(t, err)
			return strings.TrimSpace(string(out))
		}
		for i := range 20 {
			k := fmt.Sprintf("cli:%d", i)
			if got := cli("SET", k, k); got != "OK" {
				t.Fatalf("redis-cli SET: %q", got)
			}
			if got := cli("GET", k); got != k {
				t.Fatalf("redis-cli GET %s: %q", k, got)
			}
		}
		if got := cli("MGET", "cli:3", "cli:1", "cli:2"); got != "cli:3\ncli:1\ncli:2" {
			t.Fatalf("redis-cli MGET: %q", got)
		}
	})
	t.Run("PREFER_REPLICA reads from replicas", func(t *testing.T) {
		rp := startClusterProxy(t, rc, "PREFER_REPLICA")
		rcl := rp.client(t, 4)
		noErr(t, rcl.Set(ctx, "replica:k", "v", 0).Err())
		count := func(nodes []*redispeer.Server, cmd string) int {
			sum := 0
			for _, n := range nodes {
				calls, _ := n.CommandCalls(cmd)
				sum += calls
			}
			return sum
		}
		primGets, replGets, primSets := count(rc.Primaries(), "get"), count(rc.Replicas(), "get"), count(rc.Primaries(), "set")
		const reads = 200
		for range reads {
			// The value may not have reached the replica yet: only where
			// the read ran counts here.
			if err := rcl.Get(ctx, "replica:k").Err(); err != nil && err != redis.Nil {
				t.Fatal(err)
			}
		}
		noErr(t, rcl.Set(ctx, "replica:k2", "w", 0).Err())
		gotRepl, gotPrim := count(rc.Replicas(), "get")-replGets, count(rc.Primaries(), "get")-primGets
		t.Logf("PREFER_REPLICA: %d of %d GETs on replicas, %d on primaries", gotRepl, reads, gotPrim)
		if gotRepl != reads || gotPrim != 0 {
			t.Errorf("GETs: %d on replicas, %d on primaries; want all %d on replicas", gotRepl, gotPrim, reads)
		}
		if got := count(rc.Primaries(), "set") - primSets; got != 1 {
			t.Errorf("the SET ran %d times on primaries", got)
		}
	})
	t.Run("latency per node", func(t *testing.T) {
		// MASTER: the three primaries answered every command so far,
		// reads (GET) and writes (SET) on each.
		if n := testutil.CollectAndCount(p.metrics.RedisCluster.NodeDuration); n != 6 {
			t.Errorf("%d node latency series, want one per primary and family (3×2)", n)
		}
	})
	t.Run("pub/sub", func(t *testing.T) { clusterPubSub(t, p) })
	t.Run("ASK during a slot migration", func(t *testing.T) { askDuringMigration(t, rc, p, c) })
	t.Run("resharding under load", func(t *testing.T) { reshardUnderLoad(t, rc, p) })
	t.Run("resharding under load, route with a timeout and retries", func(t *testing.T) {
		reshardUnderLoad(t, rc, startClusterProxy(t, rc, "MASTER", "5s"))
	})
}

// load runs SET then GET of its own keys on workers clients until stop,
// counting failed commands and reads that did not return the value last
// written.
type load struct {
	ops, failed, stale atomic.Int64
	lastErr            atomic.Value
	lastFail           atomic.Int64 // unix nanoseconds of the last failure
	stop               chan struct{}
	wg                 sync.WaitGroup
}

func startLoad(t *testing.T, c *redis.Client, workers int) *load {
	l := &load{stop: make(chan struct{})}
	ctx := context.Background()
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				k, v := fmt.Sprintf("load:%d:%d", w, i%500), fmt.Sprint(i)
				if err := c.Set(ctx, k, v, 0).Err(); err != nil {
					l.fail(err)
					continue
				}
				got, err := c.Get(ctx, k).Result()
				switch {
				case err != nil:
					l.fail(err)
				case got != v:
					l.stale.Add(1)
				}
				l.ops.Add(2)
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func (l *load) fail(err error) {
	l.failed.Add(1)
	l.lastErr.Store(err.Error())
	l.lastFail.Store(time.Now().UnixNano())
}

func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

func reshardUnderLoad(t *testing.T, rc *redispeer.Cluster, p *clusterProxy) {
	prims := rc.Primaries()
	from, to := prims[0], prims[1]
	l := startLoad(t, p.client(t, 8), 4)
	moved0, ask0 := p.redirects("moved"), p.redirects("ask")
	time.Sleep(300 * time.Millisecond)
	out, err := exec.Command("redis-cli", "--cluster", "reshard", from.Addr, "--cluster-from", from.ID(), "--cluster-to", to.ID(),
		"--cluster-slots", "1000", "--cluster-yes").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster reshard: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	l.end()
	t.Logf("resharding 1000 slots under load: %d commands, %d failed, %d stale reads; the proxy followed %v MOVED and %v ASK",
		l.ops.Load(), l.failed.Load(), l.stale.Load(), p.redirects("moved")-moved0, p.redirects("ask")-ask0)
	if l.failed.Load() != 0 || l.stale.Load() != 0 {
		t.Errorf("%d failed commands (last: %v), %d stale reads", l.failed.Load(), l.lastErr.Load(), l.stale.Load())
	}
	if l.ops.Load() == 0 {
		t.Error("no command ran during the resharding")
	}
}

func TestRedisClusterFailover(t *testing.T) {
	rc := redispeer.StartCluster(t, 3, 1)
	p := startClusterProxy(t, rc, "MASTER")
	l := startLoad(t, p.client(t, 8), 4)
	time.Sleep(300 * time.Millisecond)
	victim := rc.Primaries()[0]
	killed := time.Now()
	victim.Stop()
	// Commands succeed again once a replica took over (Redis's own
	// failover: the node timeout is 2 s): wait for 2 s without a failure.
	deadline := time.Now().Add(60 * time.Second)
	for {
		last := time.Unix(0, l.lastFail.Load())
		if last.After(killed) && time.Since(last) > 2*time.Second || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := l.ops.Load()
	time.Sleep(500 * time.Millisecond)
	l.end()
	last := time.Unix(0, l.lastFail.Load())
	t.Logf("failover under load: %d commands failed; the last %v after the kill (%v); %d commands ran in the last 0.5 s",
		l.failed.Load(), last.Sub(killed).Round(10*time.Millisecond), l.lastErr.Load(), l.ops.Load()-before)
	if l.ops.Load() == before {
		t.Fatal("no command succeeded after the failover")
	}
	if l.stale.Load() != 0 {
		t.Errorf("%d stale reads", l.stale.Load())
	}
}

// askDuringMigration puts an empty slot of one primary in migration to
// another by hand (CLUSTER SETSLOT MIGRATING / IMPORTING, as redis-cli
// --cluster reshard does first): a new key of that slot gets ASK from the
// source, and the proxy must send ASKING and the command to the target.
// The migration is then finished (SETSLOT NODE on every primary).
func askDuringMigration(t *testing.T, rc *redispeer.Cluster, p *clusterProxy, c *redis.Client) {
	ctx := context.Background()
	prims := rc.Primaries()
	from, to := prims[0], prims[1]
	// An empty slot of from, and a key in it.
	var key string
	var slot int64
	for i := 0; key == ""; i++ {
		k := fmt.Sprintf("ask:%d", i)
		s := val(t, from.Client.ClusterKeySlot(ctx, k))
		if n, err := from.Client.ClusterCountKeysInSlot(ctx, int(s)).Result(); err == nil && n == 0 && from.Client.Get(ctx, k).Err() == redis.Nil {
			key, slot = k, s
		}
		if i > 100000 {
			t.Fatal("no empty slot on the first primary")
		}
	}
	noErr(t, to.Client.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", from.ID()).Err())
	noErr(t, from.Client.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", to.ID()).Err())
	ask0 := p.redirects("ask")
	noErr(t, c.Set(ctx, key, "moved-here", 0).Err())
	if got := val(t, c.Get(ctx, key)); got != "moved-here" {
		t.Fatalf("GET %s during the migration = %q", key, got)
	}
	if n := p.redirects("ask") - ask0; n < 2 {
		t.Errorf("the proxy followed %v ASK, want one per command", n)
	}
	if from.Client.Exists(ctx, key).Val() != 0 {
		t.Error("the key was written on the source node")
	}
	for _, n := range prims {
		noErr(t, n.Client.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", to.ID()).Err())
	}
	rc.WaitStable(30 * time.Second)
	if got := val(t, c.Get(ctx, key)); got != "moved-here" {
		t.Fatalf("GET %s after the migration = %q", key, got)
	}
}
