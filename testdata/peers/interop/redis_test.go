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
	"testing"
	"text/template"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"

	_ "github.com/metamesh/metamesh/protocols/redis"
)

// redisTmpl routes a Redis port by key prefix: user: → users (mirrored to
// the mirror server), order: → orders, reads of ro: keys → the replica,
// everything else → rest.
var redisTmpl = template.Must(template.New("").Parse(`
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  ports: [{number: {{.Port}}, name: redis, protocol: redis}]
  endpoints:
  - {address: 127.0.0.1, ports: {redis: {{.Users.Port}}}, labels: {shard: users}}
  - {address: 127.0.0.1, ports: {redis: {{.Orders.Port}}}, labels: {shard: orders}}
  - {address: 127.0.0.1, ports: {redis: {{.Rest.Port}}}, labels: {shard: rest}}
  - {address: 127.0.0.1, ports: {redis: {{.Replica.Port}}}, labels: {shard: replica}}
  - {address: 127.0.0.1, ports: {redis: {{.Mirror.Port}}}, labels: {shard: mirror}}
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: cache, namespace: default}
spec:
  host: cache.redis
  subsets:
  - {name: users, labels: {shard: users}}
  - {name: orders, labels: {shard: orders}}
  - {name: rest, labels: {shard: rest}}
  - {name: replica, labels: {shard: replica}}
  - {name: mirror, labels: {shard: mirror}}
---
apiVersion: metamesh.io/v1alpha1
kind: MetaRouter
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  routes:
  - name: replica-reads
    match: {attributes: {readonly: {exact: "true"}, key: {prefix: "ro:"}}}
    route: [{destination: {host: cache.redis, subset: replica}}]
  - name: users
    match: {attributes: {key: {prefix: "user:"}}}
    route: [{destination: {host: cache.redis, subset: users}}]
    mirror: {host: cache.redis, subset: mirror}
    mirrorExcludeReads: true
  - name: orders
    match: {attributes: {key: {prefix: "order:"}}}
    route: [{destination: {host: cache.redis, subset: orders}}]
  - name: rest
    route: [{destination: {host: cache.redis, subset: rest}}]
`))

type redisSetup struct {
	Port                                 string
	Users, Orders, Rest, Replica, Mirror *redispeer.Server
	listen                               string
	srv                                  *proxy.Server
}

// startRedis starts five redis-servers and a proxy routing them by the
// kinds above, loaded and translated as metamesh run does.
func startRedis(t *testing.T) *redisSetup {
	t.Helper()
	s := &redisSetup{Users: redispeer.Start(t), Orders: redispeer.Start(t), Rest: redispeer.Start(t),
		Replica: redispeer.Start(t), Mirror: redispeer.Start(t), listen: harness.FreeAddr(t)}
	s.Port = portOf(s.listen)
	var buf bytes.Buffer
	if err := redisTmpl.Execute(&buf, s); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cache.yaml"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, problems := file.Load(dir)
	if err := problems.Err(); err != nil {
		t.Fatal(err)
	}
	out := translate.Translate(&translate.Input{ServiceEntries: cfg.ServiceEntries, DestinationPolicies: cfg.DestinationPolicies,
		MetaRouters: cfg.MetaRouters}, translate.Options{ListenAddress: "127.0.0.1",
		KnownCodec: func(n string) bool { return slices.Contains(protocols.Names(), n) }})
	for key, conds := range out.Status {
		for _, c := range conds {
			if c.Status != "True" {
				t.Fatalf("%s: %s %s: %s", key, c.Type, c.Reason, c.Message)
			}
		}
	}
	s.srv = newProxy(t, metrics.NewProxy())
	if err := s.srv.Apply(out.Resources); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx)
	})
	return s
}

func (s *redisSetup) client(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.listen, Protocol: 2, MaxRetries: -1, PoolSize: 4})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// val is a command's value, failing the test on its error.
func val[T any](t *testing.T, cmd interface{ Result() (T, error) }) T {
	t.Helper()
	v, err := cmd.Result()
	noErr(t, err)
	return v
}

func TestRedisRouting(t *testing.T) {
	s := startRedis(t)
	c := s.client(t)
	ctx := context.Background()

	t.Run("prefix routing", func(t *testing.T) {
		for k, v := range map[string]string{"user:1": "u", "order:1": "o", "misc:1": "m"} {
			noErr(t, c.Set(ctx, k, v, 0).Err())
		}
		for srv, keys := range map[*redispeer.Server][]string{s.Users: {"user:1"}, s.Orders: {"order:1"}, s.Rest: {"misc:1"}} {
			for _, k := range []string{"user:1", "order:1", "misc:1"} {
				_, has := srv.Get(k)
				if has != slices.Contains(keys, k) {
					t.Errorf("%s has %s = %v", srv, k, has)
				}
			}
		}
		if got := val(t, c.Get(ctx, "user:1")); got != "u" {
			t.Fatalf("GET user:1 = %q", got)
		}
	})
	t.Run("read write split", func(t *testing.T) {
		noErr(t, c.Set(ctx, "ro:k", "written", 0).Err())
		if v, _ := s.Rest.Get("ro:k"); v != "written" {
			t.Fatalf("a write of ro:k went elsewhere than rest: rest has %q", v)
		}
		noErr(t, s.Replica.Client.Set(ctx, "ro:k", "from-replica", 0).Err())
		if got := val(t, c.Get(ctx, "ro:k")); got != "from-replica" {
			t.Fatalf("GET ro:k = %q, want the replica's value", got)
		}
	})
	t.Run("multi-key commands across servers", func(t *testing.T) {
		noErr(t, c.MSet(ctx, "user:2", "a", "order:2", "b", "misc:2", "c").Err())
		for srv, k := range map[*redispeer.Server]string{s.Users: "user:2", s.Orders: "order:2", s.Rest: "misc:2"} {
			if _, ok := srv.Get(k); !ok {
				t.Errorf("MSET: %s lacks %s", srv, k)
			}
		}
		got := val(t, c.MGet(ctx, "order:2", "nope:0", "user:2", "misc:2"))
		if fmt.Sprint(got) != "[b <nil> a c]" {
			t.Fatalf("MGET = %v, want [b <nil> a c] in key order", got)
		}
		if n := val(t, c.Exists(ctx, "user:2", "order:2", "misc:2", "nope:0")); n != 3 {
			t.Fatalf("EXISTS = %d, want 3", n)
		}
		if n := val(t, c.Del(ctx, "user:2", "order:2", "misc:2", "nope:0")); n != 3 {
			t.Fatalf("DEL = %d, want 3", n)
		}
		if _, ok := s.Orders.Get("order:2"); ok {
			t.Fatal("DEL left order:2 on its server")
		}
	})
	t.Run("transaction", func(t *testing.T) {
		cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "user:tx", 10, 0)
			p.IncrBy(ctx, "user:tx", 5)
			p.Get(ctx, "user:tx")
			return nil
		})
		noErr(t, err)
		if got := cmds[2].(*redis.StringCmd).Val(); got != "15" {
			t.Fatalf("transaction: GET = %q, want 15 (%v)", got, cmds)
		}
		if v, _ := s.Users.Get("user:tx"); v != "15" {
			t.Fatalf("users server has user:tx = %q after the transaction", v)
		}
		// WATCH: the transaction fails when the key changes in between.
		err = c.Watch(ctx, func(tx *redis.Tx) error {
			noErr(t, s.Users.Client.Set(ctx, "user:tx", 99, 0).Err()) // a change behind the client's back
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "user:tx", 1, 0); return nil })
			return err
		}, "user:tx")
		if err != redis.TxFailedErr {
			t.Fatalf("WATCH then a change: err %v, want redis.TxFailedErr", err)
		}
		if got := val(t, c.Get(ctx, "user:tx")); got != "99" {
			t.Fatalf("after the failed transaction: %q", got)
		}
	})
	t.Run("a refused command fails its transaction", func(t *testing.T) {
		// redis-server discards a transaction when it refused one of its
		// commands while queuing (EXECABORT); the proxy refusing one must
		// do the same, wherever in the transaction it comes.
		for name, cmds := range map[string][]string{
			"after the first":  {"set user:abort 1", "flushall", "set user:abort 2"},
			"as the first":     {"flushall", "set user:abort 3"},
			"with a bad arity": {"set user:abort 4", "get"},
		} {
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := c.TxPipelined(tctx, func(p redis.Pipeliner) error {
				for _, cmd := range cmds {
					var args []any
					for _, a := range strings.Fields(cmd) {
						args = append(args, a)
					}
					p.Do(tctx, args...)
				}
				return nil
			})
			cancel()
			if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
				t.Fatalf("%s: err %v, want EXECABORT", name, err)
			}
			if v, ok := s.Users.Get("user:abort"); ok {
				t.Fatalf("%s: the discarded transaction set user:abort = %q", name, v)
			}
		}
		// The client's connections are fine afterwards.
		cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "user:after", 1, 0)
			p.Get(ctx, "user:after")
			return nil
		})
		noErr(t, err)
		if got := cmds[1].(*redis.StringCmd).Val(); got != "1" {
			t.Fatalf("after the failed transactions: GET = %q", got)
		}
	})
	t.Run("PING and ECHO inside a transaction", func(t *testing.T) {
		cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Ping(ctx)
			p.Set(ctx, "user:ping", "1", 0)
			p.Echo(ctx, "hi")
			return nil
		})
		noErr(t, err)
		if got := cmds[0].(*redis.StatusCmd).Val(); got != "PONG" {
			t.Fatalf("PING in the transaction = %q", got)
		}
		if got := cmds[2].(*redis.StringCmd).Val(); got != "hi" {
			t.Fatalf("ECHO in the transaction = %q", got)
		}
	})
	t.Run("a transaction opened by a multi-key command", func(t *testing.T) {
		noErr(t, c.Set(ctx, "user:m1", "a", 0).Err())
		cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.MGet(ctx, "user:m1", "user:m2")
			p.Set(ctx, "user:m2", "b", 0)
			return nil
		})
		noErr(t, err)
		if got := cmds[0].(*redis.SliceCmd).Val(); len(got) != 2 || got[0] != "a" || got[1] != nil {
			t.Fatalf("MGET in the transaction = %v", got)
		}
		if v, _ := s.Users.Get("user:m2"); v != "b" {
			t.Fatalf("user:m2 = %q after the transaction", v)
		}
	})
	t.Run("pipeline of 1000 keeps order", func(t *testing.T) {
		p := c.Pipeline()
		prefixes := []string{"user:", "order:", "misc:", "ro:"}
		var gets []*redis.StringCmd
		for i := range 500 {
			k := fmt.Sprintf("%sp%d", prefixes[i%len(prefixes)], i)
			p.Set(ctx, k, i, 0)
			gets = append(gets, p.Get(ctx, strings.Replace(k, "ro:", "misc:", 1)))
		}
		if _, err := p.Exec(ctx); err != nil && err != redis.Nil { // Nil: some GETs find nothing, as intended
			t.Fatal(err)
		}
		for i, g := range gets {
			want := fmt.Sprint(i)
			if i%len(prefixes) == 3 {
				want = "" // ro: keys were written to rest; the GET asked misc:
			}
			if g.Val() != want && !(want == "" && g.Err() == redis.Nil) {
				t.Fatalf("reply %d = %q, %v; want %q", i, g.Val(), g.Err(), want)
			}
		}
	})
	t.Run("mirror", func(t *testing.T) {
		noErr(t, c.Set(ctx, "user:mirrored", "yes", 0).Err())
		waitFor(t, 2*time.Second, "the mirror to get user:mirrored", func() bool {
			v, ok := s.Mirror.Get("user:mirrored")
			return ok && v == "yes"
		})
		// Reads are not copied (mirrorExcludeReads). A client's copies
		// travel in order on one connection, so once a later SET's copy
		// is on the mirror, any copied GET would be too.
		one := redis.NewClient(&redis.Options{Addr: s.listen, Protocol: 2, MaxRetries: -1, PoolSize: 1, DisableIdentity: true})
		defer one.Close()
		getsBefore := commandCalls(t, s.Mirror, "get")
		for range 20 {
			noErr(t, one.Get(ctx, "user:mirrored").Err())
		}
		noErr(t, one.Set(ctx, "user:mirrored2", "yes", 0).Err())
		waitFor(t, 2*time.Second, "the mirror to get user:mirrored2", func() bool {
			return s.Mirror.Client.Exists(ctx, "user:mirrored2").Val() == 1
		})
		if got := commandCalls(t, s.Mirror, "get") - getsBefore; got != 0 {
			t.Fatalf("the mirror ran %d GETs from the proxy's clients, want none", got)
		}
	})
	t.Run("redis-cli", func(t *testing.T) {
		cli := func(args ...string) string {
			out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", s.Port}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
			}
			return strings.TrimSpace(string(out))
		}
		if _, err := exec.LookPath("redis-cli"); err != nil {
			t.Skip("redis-cli is not installed (make test installs redis-tools)")
		}
		if got := cli("SET", "order:cli", "v"); got != "OK" {
			t.Fatalf("SET: %q", got)
		}
		if got := cli("GET", "order:cli"); got != "v" {
			t.Fatalf("GET: %q", got)
		}
		if got := cli("PING"); got != "PONG" {
			t.Fatalf("PING: %q", got)
		}
		if got := cli("KEYS", "*"); !strings.Contains(got, "metamesh") {
			t.Fatalf("KEYS: %q, want a metamesh refusal", got)
		}
	})
}

// commandCalls is how many times srv has run cmd (INFO commandstats).
func commandCalls(t *testing.T, srv *redispeer.Server, cmd string) int {
	t.Helper()
	info, err := srv.Client.Info(context.Background(), "commandstats").Result()
	noErr(t, err)
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			var n int
			fmt.Sscanf(rest, "%d", &n)
			return n
		}
	}
	return 0
}

// TestRedisUpstreamDown: with one upstream down, its commands get errors
// in their place in the pipeline, the others succeed, the client
// connection survives, and once the server is back its commands succeed.
func TestRedisUpstreamDown(t *testing.T) {
	s := startRedis(t)
	c := redis.NewClient(&redis.Options{Addr: s.listen, Protocol: 2, MaxRetries: -1, PoolSize: 1})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	noErr(t, c.Ping(ctx).Err())
	s.Orders.Stop()
	p := c.Pipeline()
	var cmds []*redis.StatusCmd
	for i := range 200 {
		prefix := []string{"user:", "order:"}[i%2]
		cmds = append(cmds, p.Set(ctx, fmt.Sprintf("%sdown%d", prefix, i), i, 0))
	}
	_, _ = p.Exec(ctx)
	for i, cmd := range cmds {
		err := cmd.Err()
		if i%2 == 0 && err != nil {
			t.Fatalf("command %d to the live server: %v", i, err)
		}
		if i%2 == 1 && (err == nil || !strings.Contains(err.Error(), "metamesh")) {
			t.Fatalf("command %d to the stopped server: %v, want a metamesh error", i, err)
		}
	}
	s.Orders.Restart()
	waitFor(t, 5*time.Second, "commands to the restarted server to succeed", func() bool {
		return c.Set(ctx, "order:back", 1, 0).Err() == nil
	})
	if v, _ := s.Orders.Get("order:back"); v != "1" {
		t.Fatalf("order:back = %q on the restarted server", v)
	}
	if n := c.PoolStats().TotalConns; n != 1 {
		t.Fatalf("the client opened %d connections: its first one did not survive", n)
	}
}

// TestRedisUpstreamAuth: a listener whose codec config carries the
// upstream password authenticates every upstream connection; a wrong one
// gets the client the proxy's error, not the server's refusals.
func TestRedisUpstreamAuth(t *testing.T) {
	srv := redispeer.StartWith(t, "--requirepass", "s3cret")
	for _, tc := range []struct {
		password string
		ok       bool
	}{{"s3cret", true}, {"wrong", false}} {
		listen := harness.FreeAddr(t)
		cfg := fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ApplicationProtocol
metadata: {name: redis-auth}
spec: {codec: redis, codecConfig: {upstreamPassword: %q}}
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  ports: [{number: %s, name: redis, protocol: redis-auth}]
  endpoints: [{address: 127.0.0.1, ports: {redis: %s}}]
`, tc.password, portOf(listen), srv.Port())
		applyConfigDir(t, cfg)
		c := redis.NewClient(&redis.Options{Addr: listen, Protocol: 2, MaxRetries: -1, PoolSize: 1, DisableIdentity: true})
		err := c.Set(context.Background(), "authed", tc.password, 0).Err()
		_ = c.Close()
		switch {
		case tc.ok && err != nil:
			t.Fatalf("with the right upstream password: %v", err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "metamesh")):
			t.Fatalf("with a wrong upstream password: %v, want the proxy's error", err)
		}
	}
}

// applyConfigDir runs a proxy on the kinds in cfg, loaded and translated
// as metamesh run does.
func applyConfigDir(t *testing.T, cfg string) *proxy.Server {
	t.Helper()
	out := translateConfig(t, cfg)
	srv := newProxy(t, metrics.NewProxy())
	if err := srv.Apply(out.Resources); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// translateConfig loads the kinds in cfg from a folder and translates
// them as metamesh run does.
func translateConfig(t *testing.T, cfg string) *translate.Output {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, problems := file.Load(dir)
	if err := problems.Err(); err != nil {
		t.Fatal(err)
	}
	return translate.Translate(loaded.Input(),
		translate.Options{ListenAddress: "127.0.0.1", KnownCodec: func(n string) bool { return slices.Contains(protocols.Names(), n) }})
}
