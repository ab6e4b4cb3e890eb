package xdsclient_test

import (
	"context"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/certs"
	"github.com/metamesh/metamesh/proxy/xdsclient"
)

// secretServer is an ADS server that only serves Secrets: the proxy's
// certificate, signed for its request, then one for another key, which
// the proxy must refuse. Its NACKs' messages go to nacks, the tokens
// streams present to tokens.
type secretServer struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	root   *ca.Authority
	nacks  chan string
	tokens chan string
}

var greeter = spiffeid.RequireFromString("spiffe://cluster.local/ns/batch/sa/greeter")

// secrets are the Secrets of the i-th response: a certificate for the
// node's request first, then one for a key of the server's.
func (s *secretServer) secrets(t *testing.T, node *corev3.Node, i int) []*anypb.Any {
	var cert *[][]byte
	if i == 0 {
		b, _ := pem.Decode([]byte(node.GetMetadata().GetFields()[xdsclient.CSRMetadata].GetStringValue()))
		if b == nil {
			t.Error("the node carries no certificate request")
			return nil
		}
		c, err := s.root.SignWorkload(b.Bytes, greeter, time.Hour)
		if err != nil {
			t.Error(err)
			return nil
		}
		cert = &c.Certificate
	} else {
		c, err := s.root.IssueWorkload(greeter, time.Hour)
		if err != nil {
			t.Error(err)
			return nil
		}
		cert = &c.Certificate
	}
	var chain []byte
	for _, der := range *cert {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	inline := func(b []byte) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
	}
	leaf, _ := anypb.New(&tlsv3.Secret{Name: xdsclient.SecretCert, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{CertificateChain: inline(chain)}}})
	roots, _ := anypb.New(&tlsv3.Secret{Name: xdsclient.SecretRoots, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline(s.root.CertPEM())}}})
	return []*anypb.Any{leaf, roots}
}

func (s *secretServer) token(ctx context.Context) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.tokens <- strings.Join(md.Get("authorization"), ",")
}

// secretStreams serve a secretServer's streams.
type secretStreams struct {
	*secretServer
	t *testing.T
}

func (s secretStreams) StreamAggregatedResources(gs discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	s.token(gs.Context())
	var node *corev3.Node
	sent := 0
	for {
		req, err := gs.Recv()
		if err != nil {
			return err
		}
		if node == nil {
			node = req.GetNode()
		}
		if req.GetTypeUrl() != resourcev3.SecretType {
			continue
		}
		if req.GetErrorDetail() != nil {
			s.nacks <- req.GetErrorDetail().GetMessage()
			continue
		}
		if sent < 2 {
			if err := gs.Send(&discoveryv3.DiscoveryResponse{TypeUrl: resourcev3.SecretType, VersionInfo: "v", Nonce: "n",
				Resources: s.secrets(s.t, node, sent)}); err != nil {
				return err
			}
			sent++
		}
	}
}

func (s secretStreams) DeltaAggregatedResources(gs discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	s.token(gs.Context())
	var node *corev3.Node
	sent := 0
	for {
		req, err := gs.Recv()
		if err != nil {
			return err
		}
		if node == nil {
			node = req.GetNode()
		}
		if req.GetTypeUrl() != resourcev3.SecretType {
			continue
		}
		if req.GetErrorDetail() != nil {
			s.nacks <- req.GetErrorDetail().GetMessage()
			continue
		}
		if sent < 2 {
			var res []*discoveryv3.Resource
			for _, a := range s.secrets(s.t, node, sent) {
				var sec tlsv3.Secret
				_ = a.UnmarshalTo(&sec)
				res = append(res, &discoveryv3.Resource{Name: sec.GetName(), Version: "v", Resource: a})
			}
			if err := gs.Send(&discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.SecretType, SystemVersionInfo: "v", Nonce: "n", Resources: res}); err != nil {
				return err
			}
			sent++
		}
	}
}

// TestSecretsRefusedKeepTheLastGood: over a real ADS stream (delta and
// state of the world), the proxy takes a certificate signed for its own
// request, presents its identity token, and refuses (NACK, with the
// reason) a certificate for another key: the identity in force stays.
func TestSecretsRefusedKeepTheLastGood(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) { testSecretsRefusedKeepTheLastGood(t, protocol) })
	}
}

func testSecretsRefusedKeepTheLastGood(t *testing.T, protocol string) {
	certPEM, keyPEM, err := ca.Generate("root")
	if err != nil {
		t.Fatal(err)
	}
	root, err := ca.Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := &secretServer{root: root, nacks: make(chan string, 4), tokens: make(chan string, 4)}
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, secretStreams{s, t})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("a-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store := certs.NewStore()
	c, err := xdsclient.New(xdsclient.Config{Address: ln.Addr().String(), NodeID: "greeter-0.batch", Protocol: protocol,
		Apply: func(*xdsapi.Resources) error { return nil }, Log: zaptest.NewLogger(t), Certs: store, TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	select {
	case tok := <-s.tokens:
		if tok != "Bearer a-token" {
			t.Fatalf("the stream presented authorization %q, want the token file's", tok)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no stream after 30 s")
	}
	select {
	case <-store.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("no workload certificate after 30 s")
	}
	good := store.Current()
	if good.ID != greeter {
		t.Fatalf("identity %s, want %s", good.ID, greeter)
	}
	select {
	case msg := <-s.nacks:
		if !strings.Contains(msg, "not for this proxy's key") {
			t.Fatalf("NACK %q, want the reason", msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the certificate for another key was not refused")
	}
	if store.Current() != good {
		t.Fatal("the refused certificate replaced the good one")
	}
}
