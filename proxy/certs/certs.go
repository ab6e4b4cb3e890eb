// Package certs holds a proxy's workload identity: the certificate the
// control plane issued it (its SPIFFE ID, see docs/identity.md) and the
// mesh's trust bundle. The control plane's SDS Secrets fill it; the
// proxy's mutual-TLS listeners and dials read it on every handshake, so a
// rotated certificate is used by the next handshake and no connection is
// dropped.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Identity is one issued certificate and the roots it chains to.
type Identity struct {
	Cert  *tls.Certificate // leaf first, with its private key; Leaf is set
	ID    spiffeid.ID      // the leaf's SPIFFE ID
	Roots *x509.CertPool   // the trust bundle peers are verified against
	// Bundle is the same roots as the trust bundle of ID's trust domain
	// (go-spiffe's), which mutual TLS verifies peers' SPIFFE IDs against.
	Bundle *x509bundle.Bundle
}

// NotAfter is when the certificate expires.
func (id *Identity) NotAfter() time.Time { return id.Cert.Leaf.NotAfter }

// New checks an issued certificate and returns its Identity: the leaf
// must carry exactly one SPIFFE ID and chain to one of roots.
func New(cert *tls.Certificate, roots []*x509.Certificate) (*Identity, error) {
	if cert == nil || len(cert.Certificate) == 0 {
		return nil, errors.New("certs: no certificate")
	}
	if len(roots) == 0 {
		return nil, errors.New("certs: no root")
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	leaf := cert.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("certs: %w", err)
		}
		c := *cert
		c.Leaf = leaf
		cert = &c
	}
	if len(leaf.URIs) != 1 {
		return nil, fmt.Errorf("certs: the certificate names %d URIs, want one SPIFFE ID", len(leaf.URIs))
	}
	id, err := spiffeid.FromURI(leaf.URIs[0])
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certs: chain: %w", err)
		}
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := leaf.Verify(opts); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return &Identity{Cert: cert, ID: id, Roots: pool, Bundle: x509bundle.FromX509Authorities(id.TrustDomain(), roots)}, nil
}

// Store is the proxy's current Identity, swapped whole on rotation.
type Store struct {
	cur   atomic.Pointer[Identity]
	ready chan struct{}
}

// NewStore returns an empty Store.
func NewStore() *Store { return &Store{ready: make(chan struct{})} }

// Set makes id the current identity.
func (s *Store) Set(id *Identity) {
	if s.cur.Swap(id) == nil {
		close(s.ready)
	}
}

// Current is the current identity, nil until the first Set.
func (s *Store) Current() *Identity { return s.cur.Load() }

// Ready is closed by the first Set.
func (s *Store) Ready() <-chan struct{} { return s.ready }

// ParsePEM returns the certificates of the CERTIFICATE blocks of a PEM
// bundle, in order (other blocks are skipped).
func ParsePEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return out, nil
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: %w", err)
		}
		out = append(out, c)
	}
}
