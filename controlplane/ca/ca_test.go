package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

func newAuthority(t *testing.T) *Authority {
	t.Helper()
	certPEM, keyPEM, err := Generate("test root")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestIssueWorkload(t *testing.T) {
	a := newAuthority(t)
	td := spiffeid.RequireTrustDomainFromString("cluster.local")
	id, err := WorkloadID(td, "batch", "greeter")
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != "spiffe://cluster.local/ns/batch/sa/greeter" {
		t.Fatalf("WorkloadID = %s", id)
	}
	cert, err := a.IssueWorkload(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A valid X.509-SVID of id for a peer trusting the root: what the
	// proxies will check on both ends of mutual TLS.
	chain := []*x509.Certificate{cert.Leaf}
	bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{a.Cert()})
	got, _, err := x509svid.Verify(chain, bundle)
	if err != nil {
		t.Fatalf("the workload certificate is not a valid SVID: %v", err)
	}
	if got != id {
		t.Fatalf("SVID of %s, want %s", got, id)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		roots := x509.NewCertPool()
		roots.AddCert(a.Cert())
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("usage %v: %v", usage, err)
		}
	}
	if life := time.Until(cert.Leaf.NotAfter); life > time.Hour || life < 59*time.Minute {
		t.Fatalf("lives %s more, want an hour", life)
	}
	if len(cert.Certificate) != 2 || string(cert.Certificate[1]) != string(a.Cert().Raw) {
		t.Fatal("the chain is not leaf then root")
	}
	if _, err := a.IssueWorkload(spiffeid.ID{}, time.Hour); err == nil {
		t.Fatal("issued a certificate for no identity")
	}
}

func TestIssueNotBeyondTheRoot(t *testing.T) {
	a := newAuthority(t)
	cert, err := a.IssueServing([]string{"webhook.svc", "198.18.0.1"}, 2*Lifetime)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Leaf.NotAfter.After(a.Cert().NotAfter) {
		t.Fatalf("a certificate outlives its root: %s > %s", cert.Leaf.NotAfter, a.Cert().NotAfter)
	}
	if cert.Leaf.Subject.CommonName != "webhook.svc" || len(cert.Leaf.DNSNames) != 1 || len(cert.Leaf.IPAddresses) != 1 {
		t.Fatalf("names: CN %q, DNS %v, IP %v", cert.Leaf.Subject.CommonName, cert.Leaf.DNSNames, cert.Leaf.IPAddresses)
	}
}

func TestParseRefuses(t *testing.T) {
	certPEM, keyPEM, err := Generate("root")
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := Generate("other")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := newAuthority(t).IssueServing([]string{"leaf"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	leafKey, err := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cert, key []byte
		want      string
	}{
		"another key":    {certPEM, otherKey, "private key does not match"},
		"a leaf":         {leafPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: leafKey}), "not a CA certificate"},
		"no key":         {certPEM, nil, "failed to find any PEM data in key input"},
		"not PEM at all": {[]byte("hello"), keyPEM, "failed to find any PEM data in certificate input"},
	} {
		if _, err := Parse(tc.cert, tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
}

// TestSignWorkload: a proxy's own key, certified for the ID the control
// plane chose, not the names the request asked for.
func TestSignWorkload(t *testing.T) {
	a := newAuthority(t)
	id := spiffeid.RequireFromString("spiffe://cluster.local/ns/batch/sa/greeter")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	asked := spiffeid.RequireFromString("spiffe://cluster.local/ns/kube-system/sa/admin")
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{asked.URL()}}, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := a.SignWorkload(csr, id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(cert.Leaf.PublicKey) || cert.PrivateKey != nil {
		t.Fatal("the certificate is not for the request's key, or carries a key")
	}
	if len(cert.Leaf.URIs) != 1 || cert.Leaf.URIs[0].String() != id.String() {
		t.Fatalf("names %v, want only %s", cert.Leaf.URIs, id)
	}
	tampered := append([]byte(nil), csr...)
	tampered[len(tampered)-5] ^= 0xff
	if _, err := a.SignWorkload(tampered, id, time.Hour); err == nil {
		t.Fatal("signed a request whose signature does not check")
	}
	if _, err := a.SignWorkload([]byte("nonsense"), id, time.Hour); err == nil || !strings.Contains(err.Error(), "certificate request") {
		t.Fatalf("garbage: error %v, want one about the certificate request", err)
	}
}

// BenchmarkIssueWorkload is the control plane's cost per proxy of a
// reconnection storm: checking a proxy's request and signing its
// certificate (csr), and, for comparison, making the key too (key).
func BenchmarkIssueWorkload(b *testing.B) {
	certPEM, keyPEM, err := Generate("bench root")
	if err != nil {
		b.Fatal(err)
	}
	a, err := Parse(certPEM, keyPEM)
	if err != nil {
		b.Fatal(err)
	}
	id := spiffeid.RequireFromString("spiffe://cluster.local/ns/batch/sa/greeter")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("csr", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.SignWorkload(csr, id, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.IssueWorkload(id, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
}
