package certs_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/proxy/certs"
)

func authority(t *testing.T) *ca.Authority {
	t.Helper()
	certPEM, keyPEM, err := ca.Generate("test root")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ca.Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestStoreSwapsIdentities(t *testing.T) {
	a := authority(t)
	roots := []*x509.Certificate{a.Cert()}
	want := spiffeid.RequireFromString("spiffe://cluster.local/ns/batch/sa/worker")
	s := certs.NewStore()
	if s.Current() != nil {
		t.Fatal("a new store has an identity")
	}
	for i := range 2 {
		c, err := a.IssueWorkload(want, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		id, err := certs.New(c, roots)
		if err != nil {
			t.Fatal(err)
		}
		s.Set(id)
		if got := s.Current(); got != id || got.ID != want {
			t.Fatalf("set %d: current %v, want %v", i, got.ID, want)
		}
	}
	select {
	case <-s.Ready():
	default:
		t.Fatal("Ready not closed after Set")
	}
}

func TestNewRefusesForeignChains(t *testing.T) {
	issuer, other := authority(t), authority(t)
	c, err := issuer.IssueWorkload(spiffeid.RequireFromString("spiffe://cluster.local/ns/a/sa/b"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	roots := []*x509.Certificate{other.Cert()}
	if _, err := certs.New(c, roots); err == nil {
		t.Fatal("a certificate of another root was accepted")
	}
}
