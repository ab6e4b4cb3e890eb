package cli

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/metamesh/metamesh/controlplane/ca"
)

// TestProxyGetsItsWorkloadCertificate: `metamesh controlplane` in file
// mode with an operator's root (--ca-cert, --ca-key) issues `metamesh
// proxy` the certificate of the SPIFFE ID its xDS client certificate
// names; the proxy shows it on /certs and its expiry on /metrics.
func TestProxyGetsItsWorkloadCertificate(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := ca.Generate("operator root")
	if err != nil {
		t.Fatal(err)
	}
	root, err := ca.Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pair := func(name string, leaf []byte, key any) (string, string) {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf})),
			write(name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	rootCert, rootKey := write("root.crt", certPEM), write("root.key", keyPEM)
	serving, err := root.IssueServing([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, serverKey := pair("server", serving.Certificate[0], serving.PrivateKey)
	const id = "spiffe://cluster.local/ns/batch/sa/greeter"
	client, err := root.IssueWorkload(spiffeid.RequireFromString(id), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey := pair("client", client.Certificate[0], client.PrivateKey)
	config := filepath.Join(dir, "config")
	if err := os.Mkdir(config, 0o755); err != nil {
		t.Fatal(err)
	}

	addrs := freeAddrs(t, 3)
	cp := startCmd(t, Root(), addrs[0], "controlplane", "--config", config, "--xds", addrs[1],
		"--xds-cert", serverCert, "--xds-key", serverKey, "--xds-client-ca", rootCert,
		"--ca-cert", rootCert, "--ca-key", rootKey, "--workload-cert-ttl", "30s")
	proxy := startCmd(t, Root(), addrs[2], "proxy", "--xds", addrs[1], "--node", "greeter-0.batch",
		"--xds-ca", rootCert, "--xds-cert", clientCert, "--xds-key", clientKey, "--xds-server-name", "localhost")
	var got struct {
		ID       string    `json:"spiffe_id"`
		NotAfter time.Time `json:"not_after"`
	}
	for i := 0; got.ID != id; i++ {
		if i == 3000 {
			t.Fatalf("the proxy's /certs: %s, want %s", proxy("/certs"), id)
		}
		time.Sleep(10 * time.Millisecond)
		if err := json.Unmarshal([]byte(proxy("/certs")), &got); err != nil {
			t.Fatal(err)
		}
	}
	if !got.NotAfter.After(time.Now()) {
		t.Errorf("the proxy's certificate expired at %s", got.NotAfter)
	}
	if m := proxy("/metrics"); !strings.Contains(m, "\nmetamesh_workload_cert_expiry_timestamp_seconds ") {
		t.Error("the proxy's /metrics has no certificate expiry")
	}
	if m := cp("/metrics"); !strings.Contains(m, "\nmetamesh_controlplane_workload_certs_issued_total 1\n") {
		t.Error("the control plane's /metrics does not count the certificate it issued")
	}
}
