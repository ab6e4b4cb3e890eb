package xdsclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/certs"
)

// The SDS Secrets the proxy asks for (docs/identity.md): its certificate
// chain and the mesh's trust bundle, as Istio names them; and the node
// metadata field carrying its certificate request.
const (
	SecretCert  = "default"
	SecretRoots = "ROOTCA"
	CSRMetadata = "metamesh.io/csr"
)

var secretNames = []string{SecretCert, SecretRoots}

// sds is the client's workload certificate: the key it made, which never
// leaves the process, and the Secrets last accepted. Only the stream's
// goroutine uses it.
type sds struct {
	store *certs.Store
	key   *ecdsa.PrivateKey
	csr   string // PEM, sent in the node metadata
	have  map[string]*tlsv3.Secret
}

func newSDS(store *certs.Store) (*sds, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	return &sds{store: store, key: key, csr: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
		have: map[string]*tlsv3.Secret{}}, nil
}

// node is the node the client presents, with its certificate request
// and the gateway it serves.
func (c *Client) node() *corev3.Node {
	n := &corev3.Node{Id: c.cfg.NodeID, Cluster: c.cfg.Cluster, UserAgentName: "metamesh"}
	fields := map[string]*structpb.Value{}
	if c.sds != nil {
		fields[CSRMetadata] = structpb.NewStringValue(c.sds.csr)
	}
	if c.cfg.Gateway != "" {
		fields[xdsapi.GatewayMetadata] = structpb.NewStringValue(c.cfg.Gateway)
	}
	if len(fields) > 0 {
		n.Metadata = &structpb.Struct{Fields: fields}
	}
	return n
}

// withToken adds the identity token (Config.TokenFile), read afresh since
// kubelet rotates it, to a stream's metadata. A token that can't be read
// is logged: the stream opens without it and gets no certificate.
func (c *Client) withToken(ctx context.Context) context.Context {
	if c.cfg.TokenFile == "" {
		return ctx
	}
	b, err := os.ReadFile(c.cfg.TokenFile)
	token := strings.TrimSpace(string(b))
	if err == nil && token == "" {
		err = errors.New("empty")
	}
	if err != nil {
		c.log.Warn("identity token not read; connecting without it (no workload certificate)", zap.String("file", c.cfg.TokenFile), zap.Error(err))
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// accept checks Secrets from the control plane and, when the certificate
// and the roots they leave are a valid identity for this proxy's key,
// puts it in the store. On error nothing changes: the last good identity
// stays.
func (s *sds) accept(resources []*anypb.Any) error {
	next := maps.Clone(s.have)
	for i, a := range resources {
		var sec tlsv3.Secret
		if a.GetTypeUrl() != resourcev3.SecretType {
			return fmt.Errorf("resources[%d]: type %s in a Secret response", i, a.GetTypeUrl())
		}
		if err := a.UnmarshalTo(&sec); err != nil {
			return fmt.Errorf("resources[%d]: %w", i, err)
		}
		if sec.GetName() != SecretCert && sec.GetName() != SecretRoots {
			return fmt.Errorf("secret %q was not asked for", sec.GetName())
		}
		next[sec.GetName()] = &sec
	}
	certSec, rootSec := next[SecretCert], next[SecretRoots]
	if certSec == nil || rootSec == nil {
		s.have = next // the other comes in its own response
		return nil
	}
	id, err := s.identity(certSec, rootSec)
	if err != nil {
		return err
	}
	s.have = next
	s.store.Set(id)
	return nil
}

// identity is the Identity of a certificate Secret and a roots Secret.
func (s *sds) identity(certSec, rootSec *tlsv3.Secret) (*certs.Identity, error) {
	roots, err := certs.ParsePEM(rootSec.GetValidationContext().GetTrustedCa().GetInlineBytes())
	if err != nil || len(roots) == 0 {
		return nil, fmt.Errorf("secret %s: no PEM certificate in its trusted CA: %v", SecretRoots, err)
	}
	parsed, err := certs.ParsePEM(certSec.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", SecretCert, err)
	}
	if len(parsed) == 0 {
		return nil, fmt.Errorf("secret %s: no PEM certificate in its chain", SecretCert)
	}
	chain := make([][]byte, len(parsed))
	for i, c := range parsed {
		chain[i] = c.Raw
	}
	leaf := parsed[0]
	if !s.key.PublicKey.Equal(leaf.PublicKey) {
		return nil, fmt.Errorf("secret %s: the certificate is not for this proxy's key", SecretCert)
	}
	id, err := certs.New(&tls.Certificate{Certificate: chain, PrivateKey: s.key, Leaf: leaf}, roots)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", SecretCert, err)
	}
	return id, nil
}

// secretsSotw accepts a state-of-the-world Secret response and returns
// its ACK or NACK.
func (c *Client) secretsSotw(resp *discoveryv3.DiscoveryResponse) *discoveryv3.DiscoveryRequest {
	err := c.acceptSecrets(resp.GetVersionInfo(), resp.GetResources())
	req := &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.SecretType, ResponseNonce: resp.GetNonce(), ResourceNames: secretNames,
		VersionInfo: resp.GetVersionInfo()}
	if err != nil {
		req.VersionInfo, req.ErrorDetail = c.sdsVersion, errorDetail(err)
	} else {
		c.sdsVersion = resp.GetVersionInfo()
	}
	return req
}

// secretsDelta accepts a delta Secret response (removals are ignored: the
// last good identity stays) and returns its ACK or NACK.
func (c *Client) secretsDelta(resp *discoveryv3.DeltaDiscoveryResponse) *discoveryv3.DeltaDiscoveryRequest {
	resources := make([]*anypb.Any, len(resp.GetResources()))
	for i, r := range resp.GetResources() {
		resources[i] = r.GetResource()
	}
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.SecretType, ResponseNonce: resp.GetNonce()}
	if err := c.acceptSecrets(resp.GetSystemVersionInfo(), resources); err != nil {
		req.ErrorDetail = errorDetail(err)
	}
	return req
}

// acceptSecrets accepts Secrets, logs and reports the outcome.
func (c *Client) acceptSecrets(version string, resources []*anypb.Any) error {
	if err := c.sds.accept(resources); err != nil {
		c.log.Warn("workload certificate from the control plane refused (NACK); the last good one stays in force",
			zap.String("version", version), zap.Error(err))
		c.report(resourcev3.SecretType, false)
		return err
	}
	if id := c.sds.store.Current(); id != nil {
		c.log.Info("workload certificate in force", zap.Stringer("id", id.ID), zap.Time("not_after", id.NotAfter()), zap.String("version", version))
	}
	c.report(resourcev3.SecretType, true)
	return nil
}

// subscribeSecrets are the Secret subscriptions of a new stream, none
// without Config.Certs.
func (c *Client) subscribeSecrets() (sotw *discoveryv3.DiscoveryRequest, delta *discoveryv3.DeltaDiscoveryRequest) {
	if c.sds == nil {
		return nil, nil
	}
	return &discoveryv3.DiscoveryRequest{TypeUrl: resourcev3.SecretType, ResourceNames: secretNames},
		&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.SecretType, ResourceNamesSubscribe: secretNames}
}
