package interop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	athrift "github.com/apache/thrift/lib/go/thrift"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
	"github.com/metamesh/metamesh/testdata/peers/thrift"
)

// greeterEntry is the greeter's ServiceEntry on listen, one v1 endpoint.
func greeterEntry(listen, v1 string) string {
	return fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [%s]
  ports: [{number: %s, name: dubbo, protocol: dubbo}]
  endpoints: [{address: 127.0.0.1, ports: {dubbo: %s}}]
`, iface, portOf(listen), portOf(v1))
}

// allowSayHello allows the greeter's SayHello (dubbo-go names methods on
// the wire as the Go method is named) from loopback, and nothing else;
// dryRun makes it only count.
func allowSayHello(dryRun bool) string {
	return fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: greeter-allow-sayhello, namespace: default}
spec:
  hosts: [%s]
  action: ALLOW
  dryRun: %v
  rules:
  - from: [{ipBlocks: [127.0.0.0/8]}]
    to: [{methods: [SayHello]}]
`, iface, dryRun)
}

var (
	dryRunOn        = regexp.MustCompile(`"dryRun":\s*true`)
	namespacesBatch = regexp.MustCompile(`"namespaces":\s*\[\s*"batch"`)
)

// writeConfig replaces name in dir atomically, as an editor does.
func writeConfig(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// denied asserts err is the proxy's denial naming policy.
func denied(t *testing.T, what string, err error, policy string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "metamesh: denied") || !strings.Contains(err.Error(), "authorization policy "+policy) {
		t.Fatalf("%s: err = %v, want the proxy's denial naming %s", what, err, policy)
	}
}

// TestAuthorizationDubboRun drives `metamesh run` on a folder with a real
// dubbo-go client and provider: a policy allowing only sayHello denies
// the client's other methods with a status it shows (naming the policy),
// on a connection that stays up; dry-run only counts; each edit of the
// folder takes effect live; a policy by caller namespace denies everything
// until mutual TLS tells namespaces; Aeraki's DubboAuthorizationPolicy
// applies unchanged.
func TestAuthorizationDubboRun(t *testing.T) {
	bin := harness.BuildMetamesh(t)
	v1 := harness.StartGreeter(t, "v1")
	dir, listen, admin := t.TempDir(), harness.FreeAddr(t), harness.FreeAddr(t)
	writeConfig(t, dir, "greeter.yaml", greeterEntry(listen, v1.Addr))
	writeConfig(t, dir, "authz.yaml", allowSayHello(false))
	stderr := &harness.SyncBuffer{}
	startRun(t, bin, dir, admin, listen, stderr)
	cl := newClient(t, listen, dubboclient.Options{})
	ctx := context.Background()
	closedBefore := closedConns(t, admin)
	const policy = "default/greeter-allow-sayhello"
	series := func(name string) float64 {
		return metricValue(get(t, admin, "/metrics"), name+`{policy="`+policy+`"}`)
	}

	if got, err := cl.SayHello(ctx, "a"); err != nil || got != "v1|a" {
		t.Fatalf("sayHello: %q, %v", got, err)
	}
	_, err := cl.Attachment(ctx, "k")
	denied(t, "attachment", err, policy)
	_, err = cl.Sleep(ctx, 1)
	denied(t, "sleep", err, policy)
	if got, err := cl.SayHello(ctx, "b"); err != nil || got != "v1|b" {
		t.Fatalf("sayHello after two denials: %q, %v", got, err)
	}
	if n := series("metamesh_requests_denied_total"); n != 2 {
		t.Errorf("metamesh_requests_denied_total = %v, want 2", n)
	}

	// Dry run: served, logged and counted.
	writeConfig(t, dir, "authz.yaml", allowSayHello(true))
	waitFor(t, 5*time.Second, "the dry-run edit in /config_dump", func() bool {
		return dryRunOn.MatchString(get(t, admin, "/config_dump"))
	})
	if got, err := cl.Attachment(ctx, "k"); err != nil || got != "v1|" {
		t.Fatalf("attachment under dry run: %q, %v, want served", got, err)
	}
	if n := series("metamesh_authz_dry_run_denied_total"); n != 1 {
		t.Errorf("metamesh_authz_dry_run_denied_total = %v, want 1", n)
	}
	if n := series("metamesh_requests_denied_total"); n != 2 {
		t.Errorf("metamesh_requests_denied_total = %v after a dry-run request, want still 2", n)
	}
	waitFor(t, 5*time.Second, "the dry-run log line", func() bool {
		return strings.Contains(stderr.String(), "authorization dry run: request would be denied")
	})

	// Callers' namespaces are unknown before mutual TLS: a policy allowing
	// only namespace batch denies every call (docs/authorization.md).
	writeConfig(t, dir, "authz.yaml", strings.Replace(allowSayHello(false), "{ipBlocks: [127.0.0.0/8]}", "{namespaces: [batch]}", 1))
	waitFor(t, 5*time.Second, "the namespace edit in /config_dump", func() bool {
		return namespacesBatch.MatchString(get(t, admin, "/config_dump"))
	})
	_, err = cl.SayHello(ctx, "c")
	denied(t, "sayHello from an unknown namespace", err, policy)

	// Aeraki's policy, unchanged, beside metamesh's, which is removed.
	if err := os.Remove(filepath.Join(dir, "authz.yaml")); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, "aeraki.yaml", `apiVersion: dubbo.aeraki.io/v1alpha1
kind: DubboAuthorizationPolicy
metadata: {name: no-sleep, namespace: default}
spec:
  action: DENY
  rules:
  - to:
    - operation:
        interfaces: ["`+iface+`"]
        methods: ["Sleep"]
`)
	waitFor(t, 5*time.Second, "the Aeraki policy in /config_dump", func() bool {
		return strings.Contains(get(t, admin, "/config_dump"), "default/no-sleep")
	})
	_, err = cl.Sleep(ctx, 1)
	denied(t, "sleep under Aeraki's DENY", err, "default/no-sleep")
	if got, err := cl.Attachment(ctx, "k"); err != nil || got != "v1|" {
		t.Fatalf("attachment under Aeraki's DENY of sleep: %q, %v", got, err)
	}
	if got, err := cl.SayHello(ctx, "d"); err != nil || got != "v1|d" {
		t.Fatalf("sayHello under Aeraki's DENY of sleep: %q, %v", got, err)
	}
	if closed := closedConns(t, admin) - closedBefore; closed != 0 {
		t.Errorf("%v client connections closed across denials and edits", closed)
	}
}

// deniedInTransaction: after MULTI, a command goes to the client's own
// upstream connection without routing; it is checked all the same, and
// its denial fails the transaction as redis-server's ACLs do: EXEC gets
// -EXECABORT and runs nothing.
func deniedInTransaction(t *testing.T, listen string, up *redispeer.Server) {
	t.Helper()
	nc, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, "MULTI\r\nSET public:t 1\r\nSET secret:t x\r\n"); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(nc)
	for i, want := range []string{"+OK", "+QUEUED", "-NOPERM metamesh: denied by authorization policy default/no-secrets"} {
		line, err := rd.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, want) {
			t.Fatalf("transaction reply %d: %q, %v; want %q…", i, line, err, want)
		}
	}
	if _, err := io.WriteString(nc, "EXEC\r\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "-EXECABORT") {
		t.Fatalf("EXEC: %q, %v; want -EXECABORT", line, err)
	}
	if _, ok := up.Get("secret:t"); ok {
		t.Fatal("the command denied inside the transaction reached the server")
	}
	if _, ok := up.Get("public:t"); ok {
		t.Fatal("the failed transaction's other command ran")
	}
}

// TestAuthorizationBySourceAddress: an ALLOW policy by source block lets
// a go-redis client on 127.0.0.1 through and refuses the same client
// bound to 127.0.0.2, naming the policy.
func TestAuthorizationBySourceAddress(t *testing.T) {
	up := redispeer.Start(t)
	listen := harness.FreeAddr(t)
	applyConfigDir(t, redisPolicyConfig(listen, "", "", up.Addr)+`---
apiVersion: metamesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: only-local-1, namespace: default}
spec:
  rules: [{from: [{ipBlocks: [127.0.0.1]}]}]
`)
	ctx := context.Background()
	from := func(src string) *redis.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c := redis.NewClient(&redis.Options{Addr: listen, Protocol: 2, MaxRetries: -1, PoolSize: 1, DisableIdentity: true,
			Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			}})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	noErr(t, from("127.0.0.1").Set(ctx, "k", "v", 0).Err())
	err := from("127.0.0.2").Get(ctx, "k").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOPERM metamesh: denied: no rule of authorization policy default/only-local-1 allows") {
		t.Fatalf("GET from 127.0.0.2: err = %v, want -NOPERM naming the policy", err)
	}
}

// reapply translates cfg and applies it to srv, as a config edit does.
func reapply(t *testing.T, srv *proxy.Server, cfg string) {
	t.Helper()
	if err := srv.Apply(translateConfig(t, cfg).Resources); err != nil {
		t.Fatal(err)
	}
}

// TestAuthorizationThrift: an apache/thrift client may call echo only;
// ping gets a TApplicationException naming the policy and the connection
// carries on; dry-run only counts; an edit takes effect on the same
// connection.
func TestAuthorizationThrift(t *testing.T) {
	combo := thrift.Combos[0]
	v1 := thrift.StartServer(t, "v1", combo)
	listen := harness.FreeAddr(t)
	policy := func(dryRun bool, method string) string {
		return fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.thrift]
  ports: [{number: %s, name: thrift, protocol: thrift}]
  endpoints: [{address: 127.0.0.1, ports: {thrift: %s}}]
---
apiVersion: metamesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: echo-only, namespace: default}
spec:
  dryRun: %v
  rules: [{to: [{methods: [%s]}]}]
`, portOf(listen), portOf(v1.Addr), dryRun, method)
	}
	srv := applyConfigDir(t, policy(false, "echo"))
	c := thrift.Dial(t, listen, combo)
	ctx := context.Background()
	m := srv.Metrics().Authz

	if got, err := c.Echo(ctx, "a"); err != nil || got != "v1|a" {
		t.Fatalf("echo: %q, %v", got, err)
	}
	_, err := c.Ping(ctx, "b")
	var ae athrift.TApplicationException
	if !errors.As(err, &ae) || ae.TypeId() != athrift.UNKNOWN_APPLICATION_EXCEPTION || !strings.Contains(ae.Error(), "authorization policy default/echo-only") {
		t.Fatalf("ping: err = %v, want a TApplicationException UNKNOWN naming the policy", err)
	}
	if got, err := c.Echo(ctx, "c"); err != nil || got != "v1|c" {
		t.Fatalf("echo after a denial: %q, %v", got, err)
	}
	// A multiplexed client names its service "Echo", not the host: the
	// port serves echo.thrift alone, so its policy applies all the same.
	mc := thrift.DialMultiplexed(t, listen, combo, "Echo")
	if got, err := mc.Echo(ctx, "m"); err != nil || got != "v1|m" {
		t.Fatalf("multiplexed echo: %q, %v", got, err)
	}
	if _, err := mc.Ping(ctx, "m"); !errors.As(err, &ae) || !strings.Contains(ae.Error(), "authorization policy default/echo-only") {
		t.Fatalf("multiplexed ping: err = %v, want the denial", err)
	}
	if n := testutil.ToFloat64(m.Denied.WithLabelValues("default/echo-only")); n != 2 {
		t.Errorf("metamesh_requests_denied_total = %v, want 2", n)
	}

	reapply(t, srv, policy(true, "echo"))
	if got, err := c.Ping(ctx, "d"); err != nil || got != "v1|d" {
		t.Fatalf("ping under dry run: %q, %v, want served", got, err)
	}
	if n := testutil.ToFloat64(m.DryRunDenied.WithLabelValues("default/echo-only")); n != 1 {
		t.Errorf("metamesh_authz_dry_run_denied_total = %v, want 1", n)
	}

	reapply(t, srv, policy(false, "ping"))
	if got, err := c.Ping(ctx, "e"); err != nil || got != "v1|e" {
		t.Fatalf("ping once allowed: %q, %v", got, err)
	}
	if _, err := c.Echo(ctx, "f"); !errors.As(err, &ae) || !strings.Contains(ae.Error(), "default/echo-only") {
		t.Fatalf("echo once only ping is allowed: err = %v, want the denial", err)
	}
}

// TestAuthorizationRedis: a real redis-server behind a policy denying DEL
// and keys under "secret:": go-redis gets -NOPERM naming the policy, the
// connection carries on; dry-run only counts; an edit takes effect.
func TestAuthorizationRedis(t *testing.T) {
	up := redispeer.Start(t)
	listen := harness.FreeAddr(t)
	policy := func(dryRun bool, prefix string) string {
		return redisPolicyConfig(listen, "", "", up.Addr) + fmt.Sprintf(`---
apiVersion: metamesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: no-secrets, namespace: default}
spec:
  protocols: [redis]
  action: DENY
  dryRun: %v
  rules:
  - to:
    - attributes: {command: {exact: del}}
    - attributes: {key: {prefix: "%s"}}
`, dryRun, prefix)
	}
	srv := applyConfigDir(t, policy(false, "secret:"))
	c := redisClient(t, listen)
	ctx := context.Background()
	m := srv.Metrics().Authz
	if err := up.Client.Set(ctx, "secret:a", "s", 0).Err(); err != nil {
		t.Fatal(err)
	}

	noErr(t, c.Set(ctx, "public:a", "p", 0).Err())
	for _, tc := range []struct {
		name string
		cmd  redis.Cmder
	}{
		{"GET secret:a", c.Get(ctx, "secret:a")},
		{"SET secret:b", c.Set(ctx, "secret:b", "x", 0)},
		{"DEL public:a", c.Del(ctx, "public:a")},
	} {
		err := tc.cmd.Err()
		if err == nil || !strings.HasPrefix(err.Error(), "NOPERM metamesh: denied by authorization policy default/no-secrets") {
			t.Fatalf("%s: err = %v, want -NOPERM naming the policy", tc.name, err)
		}
	}
	if got := val[string](t, c.Get(ctx, "public:a")); got != "p" {
		t.Fatalf("GET public:a after denials = %q", got)
	}
	if _, ok := up.Get("secret:b"); ok {
		t.Fatal("the denied SET reached the server")
	}
	if n := testutil.ToFloat64(m.Denied.WithLabelValues("default/no-secrets")); n != 3 {
		t.Errorf("metamesh_requests_denied_total = %v, want 3", n)
	}
	deniedInTransaction(t, listen, up)

	reapply(t, srv, policy(true, "secret:"))
	if got := val[string](t, c.Get(ctx, "secret:a")); got != "s" {
		t.Fatalf("GET secret:a under dry run = %q, want served", got)
	}
	if n := testutil.ToFloat64(m.DryRunDenied.WithLabelValues("default/no-secrets")); n != 1 {
		t.Errorf("metamesh_authz_dry_run_denied_total = %v, want 1", n)
	}

	reapply(t, srv, policy(false, "private:"))
	if got := val[string](t, c.Get(ctx, "secret:a")); got != "s" {
		t.Fatalf("GET secret:a once only private: is denied = %q", got)
	}
	if err := c.Get(ctx, "private:a").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") {
		t.Fatalf("GET private:a: err = %v, want -NOPERM", err)
	}
}
