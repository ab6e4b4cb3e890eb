package admin

import (
	"crypto/x509"
	"encoding/json"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/certs"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// /certs shows no identity before the first certificate, then the
// one in force.
func TestCertsEndpoint(t *testing.T) {
	store := certs.NewStore()
	h := NewHandler(proxy.New(zaptest.NewLogger(t), metrics.NewProxy()), Options{Certs: store})
	var got certsView
	code, body := get(t, h, "GET", "/certs")
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || got != (certsView{}) {
		t.Fatalf("before a certificate: %d %s (%v)", code, body, err)
	}

	certPEM, keyPEM, err := ca.Generate("root")
	if err != nil {
		t.Fatal(err)
	}
	root, err := ca.Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString("spiffe://cluster.local/ns/batch/sa/greeter")
	cert, err := root.IssueWorkload(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	identity, err := certs.New(cert, []*x509.Certificate{root.Cert()})
	if err != nil {
		t.Fatal(err)
	}
	store.Set(identity)
	code, body = get(t, h, "GET", "/certs")
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || got.ID != id.String() ||
		got.NotAfter == nil || !got.NotAfter.Equal(cert.Leaf.NotAfter) || got.Serial != cert.Leaf.SerialNumber.Text(16) {
		t.Fatalf("with a certificate: %d %s (%v)", code, body, err)
	}
}
