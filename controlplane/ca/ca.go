// Package ca is metamesh's certificate authority: a root certificate and
// key, kept in a Kubernetes Secret or a folder (or given by the operator),
// that issues serving certificates (the injection webhook's) and workload
// certificates whose identity is a SPIFFE ID,
// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> (see
// docs/identity.md).
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Lifetime is how long a root this package generates is valid: longer than
// any cluster's upgrade cycle.
const Lifetime = 10 * 365 * 24 * time.Hour

// skew backdates every certificate, for clocks a little behind ours.
const skew = 5 * time.Minute

// Authority is a root certificate and its signing key.
type Authority struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
	now     func() time.Time
}

// Generate returns a new self-signed root named commonName, PEM-encoded:
// an ECDSA P-256 key, valid for Lifetime.
func Generate(commonName string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"metamesh"}, CommonName: commonName},
		NotBefore:             now.Add(-skew),
		NotAfter:              now.Add(Lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// Parse returns the Authority of a PEM root certificate and its key: the
// certificate must be a CA's, valid now, and the key its own.
func Parse(certPEM, keyPEM []byte) (*Authority, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("not a CA certificate (basic constraints CA, key usage cert sign) and its signing key")
	}
	if now := time.Now(); now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("the CA certificate is valid from %s to %s, not now", cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	return &Authority{cert: cert, key: signer, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), now: time.Now}, nil
}

// CertPEM is the root certificate, PEM-encoded: what clients trust.
func (a *Authority) CertPEM() []byte { return a.certPEM }

// Cert is the root certificate.
func (a *Authority) Cert() *x509.Certificate { return a.cert }

// IssueServing returns a serving certificate for hosts (DNS names or IP
// addresses; the first is its common name), valid for lifetime or until
// the root expires if sooner, with a new key.
func (a *Authority) IssueServing(hosts []string, lifetime time.Duration) (*tls.Certificate, error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"metamesh"}, CommonName: hosts[0]},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return a.issue(tmpl, lifetime)
}

// IssueWorkload returns a workload certificate for id: its only name is
// id (a URI SAN), it serves and authenticates as a client (mutual TLS
// between proxies), valid for ttl or until the root expires if sooner,
// with a new key. The chain holds the leaf and the root.
func (a *Authority) IssueWorkload(id spiffeid.ID, ttl time.Duration) (*tls.Certificate, error) {
	if id.IsZero() {
		return nil, errors.New("ca: no SPIFFE ID to issue for")
	}
	return a.issue(workloadTemplate(id), ttl)
}

// SignWorkload signs a workload certificate for id, as IssueWorkload
// does, for the public key of a proxy's certificate request (DER): the
// proxy made the key and keeps it. The request's signature must check (the
// proxy holds the key); the names it asks for are ignored, id is the only
// one. The chain is the leaf then the root.
func (a *Authority) SignWorkload(csrDER []byte, id spiffeid.ID, ttl time.Duration) (*tls.Certificate, error) {
	if id.IsZero() {
		return nil, errors.New("ca: no SPIFFE ID to issue for")
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("ca: certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("ca: certificate request: %w", err)
	}
	return a.sign(workloadTemplate(id), csr.PublicKey, ttl)
}

func workloadTemplate(id spiffeid.ID) *x509.Certificate {
	return &x509.Certificate{
		URIs:        []*url.URL{id.URL()},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}

// issue signs tmpl for a new key and returns the pair with its chain
// (leaf, root).
func (a *Authority) issue(tmpl *x509.Certificate, lifetime time.Duration) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := a.sign(tmpl, &key.PublicKey, lifetime)
	if err != nil {
		return nil, err
	}
	cert.PrivateKey = key
	return cert, nil
}

// sign fills in tmpl's serial and validity and signs it for pub; the
// result has the chain (leaf, root) and no private key.
func (a *Authority) sign(tmpl *x509.Certificate, pub any, lifetime time.Duration) (*tls.Certificate, error) {
	now := a.now()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-skew)
	tmpl.NotAfter = now.Add(lifetime)
	if a.cert.NotAfter.Before(tmpl.NotAfter) {
		tmpl.NotAfter = a.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, pub, a.key)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der, a.cert.Raw}, Leaf: leaf}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}
