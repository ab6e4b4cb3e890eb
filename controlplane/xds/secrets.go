package xds

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/zap"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metamesh/metamesh/controlplane/ca"
)

// The SDS Secrets a proxy asks for, named as Istio names them: its
// certificate chain, and the mesh's trust bundle.
const (
	SecretCert  = "default"
	SecretRoots = "ROOTCA"
)

// CSRMetadata is the node metadata field holding the proxy's certificate
// request, PEM: the proxy makes its key and keeps it (docs/identity.md).
const CSRMetadata = "metamesh.io/csr"

// DefaultWorkloadTTL is how long a workload certificate lives when
// Workloads.TTL is zero.
const DefaultWorkloadTTL = 24 * time.Hour

// Workloads configure the workload certificates the server issues over
// SDS (docs/identity.md; IssueCertificates).
type Workloads struct {
	CA          *ca.Authority
	TrustDomain spiffeid.TrustDomain
	// TTL is a certificate's lifetime (DefaultWorkloadTTL if zero); it is
	// re-issued at about half of it.
	TTL time.Duration
	// Review, if set, says whose a proxy's bearer token is (in Kubernetes
	// a TokenReview, ca.ReviewToken). Without it, or without a token, the
	// proxy's client certificate on the xDS stream names it.
	Review func(ctx context.Context, token string) (ca.Account, error)
}

// issuer issues the workload certificates of every stream.
type issuer struct {
	Workloads
	log     *zap.Logger
	roots   *anypb.Any // the ROOTCA Secret, the same for every proxy
	rootVer string
	issued  prometheus.Counter
	refused *prometheus.CounterVec
}

// IssueCertificates makes the server issue each proxy that asks a
// workload certificate over SDS, as w says; call it before Register.
// Without it, Secret requests are ignored.
func (s *Server) IssueCertificates(w Workloads) error {
	if w.CA == nil || w.TrustDomain.IsZero() {
		return errors.New("xds: workload certificates need a CA and a trust domain")
	}
	is := &issuer{Workloads: w, log: s.log,
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metamesh_controlplane_workload_certs_issued_total",
			Help: "Workload certificates issued to proxies over SDS, first ones and rotations.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metamesh_controlplane_workload_certs_refused_total",
			Help: "Proxies refused a workload certificate, by reason (no_proof, token, node, csr, client_cert); the log says who and why.",
		}, []string{"reason"}),
	}
	if is.TTL <= 0 {
		is.TTL = DefaultWorkloadTTL
	}
	roots, err := anypb.New(&tlsv3.Secret{Name: SecretRoots, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: inline(w.CA.CertPEM())}}})
	if err != nil {
		return err
	}
	is.roots, is.rootVer = roots, shortHash(w.CA.CertPEM())
	if err := s.reg.Register(is.issued); err != nil {
		return err
	}
	if err := s.reg.Register(is.refused); err != nil {
		return err
	}
	s.issuer = is
	return nil
}

// refusal is why a proxy gets no certificate, and its counter's label.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }

func refuse(reason, format string, args ...any) *refusal {
	return &refusal{reason: reason, err: fmt.Errorf(format, args...)}
}

// prove says whose certificate the proxy of a stream may get: the service
// account of its bearer token (Review), else the SPIFFE ID of its client
// certificate; the namespace of its node ID (<pod>.<namespace>) must be
// that account's.
func (is *issuer) prove(ctx context.Context, node string) (spiffeid.ID, error) {
	ns, hasNS := namespaceOf(node)
	if token := bearer(ctx); token != "" && is.Review != nil {
		acct, err := is.Review(ctx, token)
		if err != nil {
			return spiffeid.ID{}, refuse("token", "%w", err)
		}
		if !hasNS || ns != acct.Namespace {
			return spiffeid.ID{}, refuse("node", "node %q is not in namespace %s, the token's (%s/%s)", node, acct.Namespace, acct.Namespace, acct.ServiceAccount)
		}
		if pod := strings.TrimSuffix(node, "."+ns); acct.Pod != "" && pod != acct.Pod {
			return spiffeid.ID{}, refuse("node", "node %q is not pod %s, the one the token is bound to", node, acct.Pod)
		}
		id, err := ca.WorkloadID(is.TrustDomain, acct.Namespace, acct.ServiceAccount)
		if err != nil {
			return spiffeid.ID{}, refuse("token", "service account %s/%s: %w", acct.Namespace, acct.ServiceAccount, err)
		}
		return id, nil
	}
	id, err := clientCertID(ctx)
	if err != nil {
		return spiffeid.ID{}, err
	}
	certNS, sa, ok := workloadPath(id)
	if !ok {
		return spiffeid.ID{}, refuse("client_cert", "the client certificate's %s is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>", id)
	}
	if hasNS && ns != certNS {
		return spiffeid.ID{}, refuse("node", "node %q is not in namespace %s, the client certificate's (%s)", node, certNS, id)
	}
	return ca.WorkloadID(is.TrustDomain, certNS, sa) // segments of a valid SPIFFE ID: valid
}

// bearer is the token of the stream's "authorization: Bearer" metadata.
func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return ""
}

// clientCertID is the SPIFFE ID of the verified client certificate of the
// stream's mutual TLS.
func clientCertID(ctx context.Context) (spiffeid.ID, error) {
	p, _ := peer.FromContext(ctx)
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 {
		return spiffeid.ID{}, refuse("no_proof", "no token and no verified client certificate on the xDS stream")
	}
	for _, u := range info.State.VerifiedChains[0][0].URIs {
		if id, err := spiffeid.FromURI(u); err == nil {
			return id, nil
		}
	}
	return spiffeid.ID{}, refuse("client_cert", "the client certificate names no SPIFFE ID")
}

// workloadPath splits /ns/<namespace>/sa/<service-account>.
func workloadPath(id spiffeid.ID) (ns, sa string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(parts) != 4 || parts[0] != "ns" || parts[2] != "sa" {
		return "", "", false
	}
	return parts[1], parts[3], true
}

// csrOf is the certificate request (DER) in a node's metadata.
func csrOf(node *corev3.Node) ([]byte, error) {
	v := node.GetMetadata().GetFields()[CSRMetadata].GetStringValue()
	if v == "" {
		return nil, refuse("csr", "the node metadata carries no %s", CSRMetadata)
	}
	b, _ := pem.Decode([]byte(v))
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return nil, refuse("csr", "%s is not a PEM CERTIFICATE REQUEST", CSRMetadata)
	}
	return b.Bytes, nil
}

// issued is one certificate issued to a proxy: its Secret and when to
// issue the next.
type issued struct {
	secret   *anypb.Any
	version  string
	notAfter time.Time
	rotateAt time.Time
}

// issue signs the proxy's request for id; the next is due at a random
// point between 40% and 50% of the lifetime, so the proxies that
// connected together don't all come back at once.
func (is *issuer) issue(csr []byte, id spiffeid.ID) (*issued, error) {
	cert, err := is.CA.SignWorkload(csr, id, is.TTL)
	if err != nil {
		return nil, refuse("csr", "%w", err)
	}
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	secret, err := anypb.New(&tlsv3.Secret{Name: SecretCert, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inline(chain)}}})
	if err != nil {
		return nil, err
	}
	is.issued.Inc()
	life := time.Until(cert.Leaf.NotAfter)
	jitter := time.Duration(rand.Int64N(int64(life/10) + 1))
	return &issued{secret: secret, version: shortHash(cert.Leaf.Raw), notAfter: cert.Leaf.NotAfter,
		rotateAt: time.Now().Add(life/2 - jitter)}, nil
}

func inline(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}

func shortHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
