package xds_test

import (
	"testing"
	"time"

	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/controlplane/xds/xdstest"
	"github.com/metamesh/metamesh/proxy/xdsclient"
)

// With a client CA, the server takes proxies whose certificate chains to
// it and refuses the handshake of proxies with no certificate or one from
// another CA; a plaintext client gets nowhere either.
func TestTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, other := xdstest.NewCA(t, "mesh-ca"), xdstest.NewCA(t, "other-ca")
	server := ca.Server(t)
	srvTLS, err := xds.ServerTLS(xds.TLSFiles{
		Cert:     xdstest.WriteFile(t, dir, "server.crt", server.CertPEM),
		Key:      xdstest.WriteFile(t, dir, "server.key", server.KeyPEM),
		ClientCA: xdstest.WriteFile(t, dir, "ca.crt", ca.CertPEM()),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := startServer(t, xds.Options{Debounce: time.Millisecond}, srvTLS)
	srv.Update(resourcesFor(1, "v1"))

	client := func(name string, pair *xdstest.Pair, ca *xdstest.CA) *xdsclient.Client {
		f := xdsclient.TLSFiles{CA: xdstest.WriteFile(t, dir, name+"-ca.crt", ca.CertPEM()), ServerName: "localhost"}
		if pair != nil {
			f.Cert = xdstest.WriteFile(t, dir, name+".crt", pair.CertPEM)
			f.Key = xdstest.WriteFile(t, dir, name+".key", pair.KeyPEM)
		}
		cfg, err := xdsclient.ClientTLS(f)
		if err != nil {
			t.Fatal(err)
		}
		return startClient(t, addr, name, &applier{}, cfg)
	}
	trusted, stranger := ca.Client(t, "trusted"), other.Client(t, "stranger")
	client("trusted", &trusted, ca)
	client("anonymous", nil, ca)
	client("stranger", &stranger, ca)
	wrongCA := client("wrong-ca", &trusted, other) // does not trust the server
	startClient(t, addr, "plaintext", &applier{}, nil)

	waitFor(t, 5*time.Second, "the trusted proxy's ACKs", func() bool { return ackedAll(srv, "trusted") })
	// Each refused client has retried several times by now.
	time.Sleep(500 * time.Millisecond)
	for _, p := range srv.Proxies() {
		if p.Node != "trusted" {
			t.Errorf("proxy %s got through", p.Node)
		}
	}
	if wrongCA.Connected() {
		t.Error("a client that does not trust the server's CA connected")
	}
}

// ServerTLS refuses incomplete or unreadable material.
func TestServerTLSErrors(t *testing.T) {
	dir := t.TempDir()
	ca := xdstest.NewCA(t, "ca")
	pair := ca.Server(t)
	cert, key := xdstest.WriteFile(t, dir, "s.crt", pair.CertPEM), xdstest.WriteFile(t, dir, "s.key", pair.KeyPEM)
	notPEM := xdstest.WriteFile(t, dir, "junk", []byte("not a certificate"))
	for name, f := range map[string]xds.TLSFiles{
		"no key":          {Cert: cert},
		"missing file":    {Cert: cert, Key: dir + "/nope"},
		"client CA junk":  {Cert: cert, Key: key, ClientCA: notPEM},
		"key for no cert": {Cert: notPEM, Key: key},
	} {
		if _, err := xds.ServerTLS(f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
