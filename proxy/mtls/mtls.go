// Package mtls is mutual TLS between proxies (docs/mesh-mode.md#mutual-tls-between-proxies):
// the TLS configs that present the proxy's workload identity (proxy/certs)
// and verify the peer's SPIFFE ID against the mesh's trust bundle, read at
// every handshake so a rotated certificate needs no restart; and the
// first-byte sniff that tells a TLS client from a plaintext one.
package mtls

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/metamesh/metamesh/proxy/certs"
)

// Handshake results, the result label of metamesh_mtls_handshakes_total.
const (
	ResultOK = "ok"
	// ResultBadPeer: the peer's certificate did not chain to the trust
	// bundle, or named another SPIFFE ID than expected.
	ResultBadPeer = "bad_peer"
	// ResultNoIdentity: this proxy has no workload certificate yet.
	ResultNoIdentity = "no_identity"
	// ResultPlaintext: a plaintext client on a STRICT listener.
	ResultPlaintext = "plaintext_refused"
	// ResultError: any other failure (timeout, protocol error, closed).
	ResultError = "error"
)

// Sides, the side label.
const (
	SideServer = "server"
	SideClient = "client"
)

// ErrNoIdentity is the handshake error of a proxy without a workload
// certificate.
var ErrNoIdentity = errors.New("mtls: no workload certificate yet")

// PeerError is a handshake error about the peer's certificate.
type PeerError struct{ Err error }

func (e *PeerError) Error() string { return "mtls: peer refused: " + e.Err.Error() }
func (e *PeerError) Unwrap() error { return e.Err }

// Result classifies a handshake error.
func Result(err error) string {
	var pe *PeerError
	switch {
	case err == nil:
		return ResultOK
	case errors.As(err, &pe):
		return ResultBadPeer
	case errors.Is(err, ErrNoIdentity):
		return ResultNoIdentity
	}
	return ResultError
}

// Mesh is a proxy's side of mutual TLS: its identity and the configs of
// its handshakes.
type Mesh struct {
	store      *certs.Store
	handshakes *prometheus.CounterVec
	server     *tls.Config

	mu      sync.Mutex
	clients map[string]*tls.Config // by cluster and expected IDs
}

// New returns the mesh side of a proxy whose identity is in store,
// counting handshakes in handshakes (side, result; nil: not counted). A
// nil store is one that stays empty: a proxy without an identity.
func New(store *certs.Store, handshakes *prometheus.CounterVec) *Mesh {
	if store == nil {
		store = certs.NewStore()
	}
	m := &Mesh{store: store, handshakes: handshakes, clients: map[string]*tls.Config{}}
	m.server = &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return m.cert()
		},
		// Verified by VerifyConnection (a SPIFFE ID, not a host name), on
		// full and resumed handshakes alike.
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error { _, err := m.verify(cs, nil); return err },
	}
	return m
}

// Store is where the proxy's identity is.
func (m *Mesh) Store() *certs.Store { return m.store }

// Ready reports whether the proxy has a workload certificate.
func (m *Mesh) Ready() bool { return m.store.Current() != nil }

// Server is the config of every accepted mutual TLS connection. One
// config for the proxy's life, so session tickets it issued stay valid.
func (m *Mesh) Server() *tls.Config { return m.server }

// Count counts one handshake (nothing without a counter).
func (m *Mesh) Count(side, result string) {
	if m.handshakes != nil {
		m.handshakes.WithLabelValues(side, result).Inc()
	}
}

// Client is the config of the connections a cluster dials to proxies,
// which must present one of ids (any ID the trust bundle vouches for when
// empty). The same cluster and ids get the same config, with its own
// session cache, so config pushes don't lose resumption.
func (m *Mesh) Client(cluster string, ids []spiffeid.ID) *tls.Config {
	key := cluster
	for _, id := range ids {
		key += "\x00" + id.String()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.clients[key]; ok {
		return c
	}
	ids = slices.Clone(ids)
	c := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := m.cert()
			if err != nil {
				m.Count(SideClient, ResultNoIdentity)
			}
			return cert, err
		},
		// The server's certificate names a SPIFFE ID, not the dialed
		// address: VerifyConnection checks it, on resumptions too.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := m.verify(cs, ids)
			m.Count(SideClient, Result(err))
			return err
		},
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	m.clients[key] = c
	return c
}

// Retain forgets the client configs of clusters keep rejects.
func (m *Mesh) Retain(keep func(cluster string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.clients {
		name, _, _ := strings.Cut(k, "\x00")
		if !keep(name) {
			delete(m.clients, k)
		}
	}
}

func (m *Mesh) cert() (*tls.Certificate, error) {
	id := m.store.Current()
	if id == nil {
		return nil, ErrNoIdentity
	}
	return id.Cert, nil
}

// verify checks the peer's certificate chain against the current trust
// bundle and its SPIFFE ID against ids (any when empty), returning the ID.
func (m *Mesh) verify(cs tls.ConnectionState, ids []spiffeid.ID) (spiffeid.ID, error) {
	cur := m.store.Current()
	if cur == nil {
		return spiffeid.ID{}, ErrNoIdentity
	}
	if len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, &PeerError{errors.New("no certificate")}
	}
	id, _, err := x509svid.Verify(cs.PeerCertificates, cur.Bundle)
	if err != nil {
		return spiffeid.ID{}, &PeerError{err}
	}
	if len(ids) > 0 && !slices.Contains(ids, id) {
		return spiffeid.ID{}, &PeerError{fmt.Errorf("%s is not one of the expected identities %v", id, ids)}
	}
	return id, nil
}
