package interop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/redispeer"
)

// testCA issues certificates for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	ca := &testCA{dir: t.TempDir()}
	ca.cert, ca.key = ca.issue(t, "ca", &x509.Certificate{IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature})
	return ca
}

// issue signs tmpl (self-signed for the CA itself) and writes name.pem and
// name-key.pem into the CA's folder.
func (ca *testCA) issue(t *testing.T, name string, tmpl *x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.Subject = pkix.Name{CommonName: name}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	parent, signer := tmpl, key
	if ca.cert != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(ca.dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+"-key.pem", "EC PRIVATE KEY", kder)
	return cert, key
}

func (ca *testCA) file(name string) string { return filepath.Join(ca.dir, name) }

// clientTLS is a client configuration presenting a certificate with the
// SPIFFE ID id, issued by ca.
func (ca *testCA) clientTLS(t *testing.T, name, id string) *tls.Config {
	t.Helper()
	u, err := url.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	ca.issue(t, name, &x509.Certificate{URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	pair, err := tls.LoadX509KeyPair(ca.file(name+".pem"), ca.file(name+"-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// TestAuthorizationByClientCertificate: on a listener that terminates
// mutual TLS, the caller's SPIFFE ID names its principal and namespace. A
// policy allowing only namespace batch serves a go-redis client whose
// certificate says spiffe://cluster.local/ns/batch/sa/reporter and
// refuses one from namespace dev, naming the policy.
func TestAuthorizationByClientCertificate(t *testing.T) {
	up := redispeer.Start(t)
	ca := newTestCA(t)
	ca.issue(t, "server", &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	listen := harness.FreeAddr(t)
	applyConfigDir(t, redisPolicyConfig(listen, "", "", up.Addr)+fmt.Sprintf(`---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: cache, namespace: default}
spec:
  host: cache.redis
  listenerTls: {mode: MUTUAL, serverCertificate: %s, privateKey: %s, caCertificates: %s}
---
apiVersion: metamesh.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: batch-only, namespace: default}
spec:
  rules:
  - from: [{namespaces: [batch], principals: ["cluster.local/ns/batch/sa/*"]}]
`, ca.file("server.pem"), ca.file("server-key.pem"), ca.file("ca.pem")))
	ctx := context.Background()
	client := func(name, id string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: listen, Protocol: 2, MaxRetries: -1, PoolSize: 1, DisableIdentity: true,
			TLSConfig: ca.clientTLS(t, name, id)})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	noErr(t, client("batch", "spiffe://cluster.local/ns/batch/sa/reporter").Set(ctx, "k", "v", 0).Err())
	err := client("dev", "spiffe://cluster.local/ns/dev/sa/reporter").Get(ctx, "k").Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOPERM metamesh: denied: no rule of authorization policy default/batch-only allows") {
		t.Fatalf("GET from namespace dev: err = %v, want -NOPERM naming the policy", err)
	}
	if v, ok := up.Get("k"); !ok || v != "v" {
		t.Fatalf("the batch client's SET did not reach the server: %q, %v", v, ok)
	}
}
