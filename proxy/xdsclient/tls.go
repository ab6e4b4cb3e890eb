package xdsclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles name the PEM files of the client's TLS.
type TLSFiles struct {
	// CA is the bundle the control plane's certificate must chain to.
	CA string
	// Cert and Key, both or neither, are the proxy's client certificate,
	// for a control plane that requires one.
	Cert, Key string
	// ServerName overrides the name checked in the control plane's
	// certificate (default: the host of the address dialled).
	ServerName string
}

// ClientTLS returns the TLS config of the connection to the control plane.
func ClientTLS(f TLSFiles) (*tls.Config, error) {
	if f.CA == "" {
		return nil, errors.New("xds tls: a CA bundle is required to verify the control plane")
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("xds tls: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("xds tls: %s: no PEM certificate found", f.CA)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: f.ServerName, MinVersion: tls.VersionTLS12}
	if (f.Cert == "") != (f.Key == "") {
		return nil, errors.New("xds tls: a client certificate and its key go together")
	}
	if f.Cert != "" {
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("xds tls: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
