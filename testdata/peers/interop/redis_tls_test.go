package interop

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
)

// TestRedisTLS: a go-redis client speaking mutual TLS to a listener that
// terminates it, the proxy originating mutual TLS to a redis-server that
// speaks only TLS (Debian's is built with TLS), with the test certificates
// of testdata/tls. A plaintext client, and one without a certificate, are
// refused at the handshake and counted; the TLS client's commands reach
// the server.
func TestRedisTLS(t *testing.T) {
	certs, err := filepath.Abs("../../tls")
	if err != nil {
		t.Fatal(err)
	}
	up := redispeer.StartTLS(t, certs)
	listen := harness.FreeAddr(t)
	file := func(name string) string { return filepath.Join(certs, name) }
	srv := applyConfigDir(t, fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  ports: [{number: %s, name: redis, protocol: redis}]
  endpoints: [{address: 127.0.0.1, ports: {redis: %s}}]
---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: cache, namespace: default}
spec:
  host: cache.redis
  tls: {mode: MUTUAL, clientCertificate: %[3]s, privateKey: %[4]s, caCertificates: %[5]s}
  listenerTls: {mode: MUTUAL, serverCertificate: %[6]s, privateKey: %[7]s, caCertificates: %[5]s}
`, portOf(listen), up.Port(), file("client.pem"), file("client-key.pem"), file("ca.pem"), file("server.pem"), file("server-key.pem")))
	ctx := context.Background()

	c := redis.NewClient(&redis.Options{Addr: listen, Protocol: 2, MaxRetries: -1, TLSConfig: redispeer.ClientTLS(t, certs)})
	t.Cleanup(func() { _ = c.Close() })
	for i := range 50 {
		noErr(t, c.Set(ctx, fmt.Sprintf("tls:%d", i), i, 0).Err())
	}
	if got := val(t, c.Get(ctx, "tls:49")); got != "49" {
		t.Fatalf("GET through TLS both ways = %q", got)
	}
	if v, ok := up.Get("tls:7"); !ok || v != "7" {
		t.Fatalf("the TLS redis-server has tls:7 = %q, %v", v, ok)
	}

	closed := srv.Metrics().DownstreamCxClosed.WithLabelValues("redis-"+portOf(listen), "tls_handshake")
	plain := redis.NewClient(&redis.Options{Addr: listen, Protocol: 2, MaxRetries: -1})
	t.Cleanup(func() { _ = plain.Close() })
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a plaintext client was served by a TLS listener")
	}
	noCert := redispeer.ClientTLS(t, certs)
	noCert.Certificates = nil
	anon := redis.NewClient(&redis.Options{Addr: listen, Protocol: 2, MaxRetries: -1, TLSConfig: noCert})
	t.Cleanup(func() { _ = anon.Close() })
	if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a client without a certificate: %v, want a TLS certificate error", err)
	}
	waitFor(t, 5*time.Second, "the refused handshakes to be counted", func() bool { return testutil.ToFloat64(closed) >= 2 })
}
