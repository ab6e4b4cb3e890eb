package xdsclient_test

import (
	"testing"

	"github.com/metamesh/metamesh/controlplane/xds/xdstest"
	"github.com/metamesh/metamesh/proxy/xdsclient"
)

// ClientTLS needs a CA, and a client certificate comes with its key.
func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	ca := xdstest.NewCA(t, "ca")
	pair := ca.Client(t, "p1")
	caFile := xdstest.WriteFile(t, dir, "ca.crt", ca.CertPEM())
	cert, key := xdstest.WriteFile(t, dir, "p1.crt", pair.CertPEM), xdstest.WriteFile(t, dir, "p1.key", pair.KeyPEM)

	cfg, err := xdsclient.ClientTLS(xdsclient.TLSFiles{CA: caFile, Cert: cert, Key: key, ServerName: "cp.mesh"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Certificates) != 1 || cfg.ServerName != "cp.mesh" || cfg.RootCAs == nil {
		t.Fatalf("config %+v", cfg)
	}
	for name, f := range map[string]xdsclient.TLSFiles{
		"no CA":           {Cert: cert, Key: key},
		"cert, no key":    {CA: caFile, Cert: cert},
		"CA not PEM":      {CA: key + ".missing"},
		"key is not cert": {CA: caFile, Cert: key, Key: key},
	} {
		if _, err := xdsclient.ClientTLS(f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
