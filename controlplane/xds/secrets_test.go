package xds_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/controlplane/xds/xdstest"
	"github.com/metamesh/metamesh/proxy/certs"
	"github.com/metamesh/metamesh/proxy/xdsclient"
)

var trustDomain = spiffeid.RequireTrustDomainFromString("cluster.local")

func newAuthority(t testing.TB) *ca.Authority {
	t.Helper()
	certPEM, keyPEM, err := ca.Generate("mesh root")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ca.Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// certClient is a proxy's ADS client that asks for its workload
// certificate.
type certClient struct {
	store  *certs.Store
	client *xdsclient.Client
	apply  *applier
}

func startCertClient(t testing.TB, addr, node, protocol string, tlsCfg *tls.Config, tokenFile string) *certClient {
	t.Helper()
	cc := &certClient{store: certs.NewStore(), apply: &applier{}}
	c, err := xdsclient.New(xdsclient.Config{Address: addr, NodeID: node, Cluster: "test", TLS: tlsCfg, Apply: cc.apply.Apply,
		Log: zaptest.NewLogger(t), Protocol: protocol, Certs: cc.store, TokenFile: tokenFile,
		Backoff: xdsclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	cc.client = c
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cc
}

// ready waits for the proxy's first certificate.
func (cc *certClient) ready(t testing.TB) {
	t.Helper()
	select {
	case <-cc.store.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("no workload certificate after 20 s")
	}
}

// mtls is the xDS channel's mutual TLS in file mode: the server's
// certificate and each proxy's client certificate come from one root.
type mtls struct {
	t      testing.TB
	dir    string
	root   *ca.Authority
	rootCA string // file
}

func newMTLS(t testing.TB, root *ca.Authority) *mtls {
	m := &mtls{t: t, dir: t.TempDir(), root: root}
	m.rootCA = xdstest.WriteFile(t, m.dir, "root.crt", root.CertPEM())
	return m
}

func (m *mtls) write(name string, cert *tls.Certificate) (certFile, keyFile string) {
	m.t.Helper()
	var chain []byte
	for _, der := range cert.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		m.t.Fatal(err)
	}
	return xdstest.WriteFile(m.t, m.dir, name+".crt", chain),
		xdstest.WriteFile(m.t, m.dir, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))
}

func (m *mtls) server() *tls.Config {
	m.t.Helper()
	cert, err := m.root.IssueServing([]string{"localhost", "127.0.0.1"}, time.Hour)
	if err != nil {
		m.t.Fatal(err)
	}
	c, k := m.write("server", cert)
	cfg, err := xds.ServerTLS(xds.TLSFiles{Cert: c, Key: k, ClientCA: m.rootCA})
	if err != nil {
		m.t.Fatal(err)
	}
	return cfg
}

// client is the TLS of a proxy whose client certificate names id.
func (m *mtls) client(id string) *tls.Config {
	m.t.Helper()
	cert, err := m.root.IssueWorkload(spiffeid.RequireFromString(id), time.Hour)
	if err != nil {
		m.t.Fatal(err)
	}
	c, k := m.write(strings.NewReplacer("spiffe://", "", "/", "-").Replace(id), cert)
	cfg, err := xdsclient.ClientTLS(xdsclient.TLSFiles{CA: m.rootCA, Cert: c, Key: k, ServerName: "localhost"})
	if err != nil {
		m.t.Fatal(err)
	}
	return cfg
}

// TestSDSIssuesAndRotates: over a real ADS stream (delta and state of the
// world, mutual TLS as in file mode) a proxy gets its certificate,
// `default`, and the roots, `ROOTCA`: its store holds the SPIFFE ID of its
// xDS client certificate. With a 4 s lifetime, the certificate is
// replaced before it expires, on the same stream.
func TestSDSIssuesAndRotates(t *testing.T) {
	for _, protocol := range []string{xdsclient.ProtocolDelta, xdsclient.ProtocolSotw} {
		t.Run(protocol, func(t *testing.T) { testSDSIssuesAndRotates(t, protocol) })
	}
}

func testSDSIssuesAndRotates(t *testing.T, protocol string) {
	root := newAuthority(t)
	m := newMTLS(t, root)
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, m.server())
	if err := srv.IssueCertificates(xds.Workloads{CA: root, TrustDomain: trustDomain, TTL: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	srv.Update(resourcesFor(1, "v1"))
	const want = "spiffe://cluster.local/ns/batch/sa/greeter"
	p := startCertClient(t, addr, "greeter-0.batch", protocol, m.client(want), "")

	p.ready(t)
	first := p.store.Current()
	if first.ID.String() != want {
		t.Fatalf("the proxy's identity is %s, want %s", first.ID, want)
	}
	if !first.Roots.Equal(poolOf(root)) {
		t.Fatal("the proxy's roots are not the control plane's")
	}
	waitFor(t, 20*time.Second, "the routing config", func() bool { return p.apply.count() > 0 })
	since := proxy(srv, "greeter-0.batch").ConnectedSince

	waitFor(t, 20*time.Second, "a rotation", func() bool {
		return p.store.Current().Cert.Leaf.SerialNumber.Cmp(first.Cert.Leaf.SerialNumber) != 0
	})
	if rotated := time.Now(); !rotated.Before(first.NotAfter()) {
		t.Fatalf("rotated at %s, after the certificate expired (%s)", rotated, first.NotAfter())
	}
	if got := p.store.Current().ID.String(); got != want {
		t.Fatalf("rotated to %s, want %s", got, want)
	}
	st := proxy(srv, "greeter-0.batch")
	if st.Streams != 1 || !st.ConnectedSince.Equal(since) {
		t.Fatalf("the stream restarted: %d streams, connected since %s (was %s)", st.Streams, st.ConnectedSince, since)
	}
	waitFor(t, 20*time.Second, "the rotated certificate's ACK", func() bool {
		st := proxy(srv, "greeter-0.batch")
		return st.Acked["secret"] != "" && st.Acked["secret"] == st.Sent["secret"]
	})
	if n := metric(t, srv.Registry(), "metamesh_controlplane_workload_certs_issued_total", nil); n < 2 {
		t.Fatalf("%v certificates issued, want the first and a rotation", n)
	}
}

func poolOf(a *ca.Authority) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert())
	return p
}

// TestSDSRefusesWithoutProof: in file mode, a proxy without a client
// certificate, or whose node ID names another namespace than its client
// certificate, gets its routing config and no certificate; each refusal
// is counted by reason.
func TestSDSRefusesWithoutProof(t *testing.T) {
	root := newAuthority(t)
	m := newMTLS(t, root)
	// The xDS channel requires no client certificate here: a proxy
	// without one still reaches the server.
	tlsCfg := m.server()
	tlsCfg.ClientAuth = tls.VerifyClientCertIfGiven
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, tlsCfg)
	if err := srv.IssueCertificates(xds.Workloads{CA: root, TrustDomain: trustDomain}); err != nil {
		t.Fatal(err)
	}
	srv.Update(resourcesFor(1, "v1"))
	anonymousTLS, err := xdsclient.ClientTLS(xdsclient.TLSFiles{CA: m.rootCA, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	anonymous := startCertClient(t, addr, "anonymous-0.batch", xdsclient.ProtocolDelta, anonymousTLS, "")
	elsewhere := startCertClient(t, addr, "greeter-0.kube-system", xdsclient.ProtocolSotw, m.client("spiffe://cluster.local/ns/batch/sa/greeter"), "")
	honest := startCertClient(t, addr, "greeter-1.batch", xdsclient.ProtocolDelta, m.client("spiffe://cluster.local/ns/batch/sa/greeter"), "")

	honest.ready(t)
	for name, p := range map[string]*certClient{"without a client certificate": anonymous, "in another namespace": elsewhere} {
		waitFor(t, 20*time.Second, "the routing config of the proxy "+name, func() bool { return p.apply.count() > 0 })
	}
	for reason, n := range map[string]float64{"no_proof": 1, "node": 1} {
		waitFor(t, 20*time.Second, "a refusal for "+reason, func() bool {
			return metric(t, srv.Registry(), "metamesh_controlplane_workload_certs_refused_total", map[string]string{"reason": reason}) == n
		})
	}
	if anonymous.store.Current() != nil || elsewhere.store.Current() != nil {
		t.Fatal("a proxy without proof of its identity got a certificate")
	}
}

// A server without a CA and trust domain can't issue.
func TestIssueCertificatesNeedsACA(t *testing.T) {
	srv, _ := startServer(t, xds.Options{}, nil)
	if err := srv.IssueCertificates(xds.Workloads{TrustDomain: trustDomain}); err == nil {
		t.Fatal("no error without a CA")
	}
}
