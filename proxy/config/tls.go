package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
)

// tlsSocket is the only transport socket a proxy knows.
const tlsSocket = "envoy.transport_sockets.tls"

// clientTLS compiles a cluster's transport socket (an UpstreamTlsContext)
// into the config of its handshakes and a key naming the settings
// (connections with other settings are pooled apart), or returns nil for
// none. The files it names are read now, so a missing or bad one refuses
// the config with its path; the key pair is read again when its files
// change (a rotated certificate needs no config change).
func clientTLS(ts *corev3.TransportSocket, path string) (*tls.Config, string, error) {
	if ts == nil {
		return nil, "", nil
	}
	cfg, err := upstreamTLS(ts, path)
	if err != nil {
		return nil, "", err
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(ts) // a validated generated message always marshals
	sum := sha256.Sum256(b)
	return cfg, hex.EncodeToString(sum[:8]), nil
}

func upstreamTLS(ts *corev3.TransportSocket, path string) (*tls.Config, error) {
	var ctx tlsv3.UpstreamTlsContext
	if err := tlsContext(ts, path, &ctx); err != nil {
		return nil, err
	}
	cp := path + ".typed_config"
	if err := onlyFields(&ctx, cp, "common_tls_context", "sni"); err != nil {
		return nil, err
	}
	common := ctx.GetCommonTlsContext()
	cp += ".common_tls_context"
	if err := onlyFields(common, cp, "tls_certificates", "validation_context"); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: ctx.GetSni()}
	certs := common.GetTlsCertificates()
	switch len(certs) {
	case 0:
	case 1:
		kp, err := keyPairOf(certs[0], cp+".tls_certificates[0]")
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	default:
		return nil, fmt.Errorf("%s.tls_certificates: at most one certificate", cp)
	}
	vc := common.GetValidationContext()
	vp := cp + ".validation_context"
	if err := onlyFields(vc, vp, "trusted_ca", "match_typed_subject_alt_names", "trust_chain_verification"); err != nil {
		return nil, err
	}
	if vc.GetTrustChainVerification() == tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED {
		cfg.InsecureSkipVerify = true
	} else if err := verifyServer(cfg, vc, vp); err != nil {
		return nil, err
	}
	return cfg, nil
}

// verifyServer sets cfg to verify the server's certificate: against
// trusted_ca (the system's roots without it), naming the SNI or, when
// given, one of the subject alt names.
func verifyServer(cfg *tls.Config, vc *tlsv3.CertificateValidationContext, path string) error {
	if ca := vc.GetTrustedCa(); ca != nil {
		pool, err := certPool(ca, path+".trusted_ca")
		if err != nil {
			return err
		}
		cfg.RootCAs = pool
	}
	var sans []string
	for i, m := range vc.GetMatchTypedSubjectAltNames() {
		exact := m.GetMatcher().GetExact()
		if m.GetSanType() != tlsv3.SubjectAltNameMatcher_DNS || exact == "" {
			return fmt.Errorf("%s.match_typed_subject_alt_names[%d]: only DNS names matched exactly are supported", path, i)
		}
		sans = append(sans, exact)
	}
	if len(sans) == 0 {
		return nil
	}
	// The chain is verified here instead of by crypto/tls, which would
	// want the certificate to name the SNI.
	roots := cfg.RootCAs
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(opts); err != nil {
			return err
		}
		for _, san := range sans {
			if leaf.VerifyHostname(san) == nil {
				return nil
			}
		}
		return fmt.Errorf("tls: the server's certificate names none of %v", sans)
	}
	return nil
}

// serverTLS compiles a listener filter chain's transport socket (a
// DownstreamTlsContext), or returns nil for none.
func serverTLS(ts *corev3.TransportSocket, path string) (*tls.Config, error) {
	if ts == nil {
		return nil, nil
	}
	var ctx tlsv3.DownstreamTlsContext
	if err := tlsContext(ts, path, &ctx); err != nil {
		return nil, err
	}
	cp := path + ".typed_config"
	if err := onlyFields(&ctx, cp, "common_tls_context", "require_client_certificate"); err != nil {
		return nil, err
	}
	common := ctx.GetCommonTlsContext()
	cp += ".common_tls_context"
	if err := onlyFields(common, cp, "tls_certificates", "validation_context"); err != nil {
		return nil, err
	}
	certs := common.GetTlsCertificates()
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s.tls_certificates: exactly one certificate is required", cp)
	}
	kp, err := keyPairOf(certs[0], cp+".tls_certificates[0]")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() }}
	if ctx.GetRequireClientCertificate().GetValue() {
		vc := common.GetValidationContext()
		vp := cp + ".validation_context"
		if err := onlyFields(vc, vp, "trusted_ca"); err != nil {
			return nil, err
		}
		if vc.GetTrustedCa() == nil {
			return nil, fmt.Errorf("%s.trusted_ca: required to verify client certificates", vp)
		}
		if cfg.ClientCAs, err = certPool(vc.GetTrustedCa(), vp+".trusted_ca"); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	} else if common.GetValidationContext() != nil {
		return nil, fmt.Errorf("%s.validation_context: only with require_client_certificate", cp)
	}
	return cfg, nil
}

// tlsContext unpacks a TLS transport socket's context into ctx.
func tlsContext(ts *corev3.TransportSocket, path string, ctx proto.Message) error {
	if ts.GetName() != tlsSocket {
		return fmt.Errorf("%s.name: %q, want %q", path, ts.GetName(), tlsSocket)
	}
	if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
		return fmt.Errorf("%s.typed_config: %w", path, err)
	}
	return nil
}

// filename is the file a data source names: the only kind supported.
func filename(ds *corev3.DataSource, path string) (string, error) {
	f := ds.GetFilename()
	if f == "" {
		return "", fmt.Errorf("%s: a filename is required", path)
	}
	return f, nil
}

func certPool(ds *corev3.DataSource, path string) (*x509.CertPool, error) {
	f, err := filename(ds, path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", path, f)
	}
	return pool, nil
}

// keyPair is a certificate and key read from files, read again when
// either file's modification time changes.
type keyPair struct {
	certFile, keyFile string
	mu                sync.Mutex
	certMod, keyMod   time.Time
	cert              *tls.Certificate
}

func keyPairOf(tc *tlsv3.TlsCertificate, path string) (*keyPair, error) {
	if err := onlyFields(tc, path, "certificate_chain", "private_key"); err != nil {
		return nil, err
	}
	cf, err := filename(tc.GetCertificateChain(), path+".certificate_chain")
	if err != nil {
		return nil, err
	}
	kf, err := filename(tc.GetPrivateKey(), path+".private_key")
	if err != nil {
		return nil, err
	}
	kp := &keyPair{certFile: cf, keyFile: kf}
	if _, err := kp.get(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kp, nil
}

// get returns the pair, read again if a file changed since; a pair that
// no longer loads keeps the last good one in use.
func (kp *keyPair) get() (*tls.Certificate, error) {
	cs, cerr := os.Stat(kp.certFile)
	ks, kerr := os.Stat(kp.keyFile)
	kp.mu.Lock()
	defer kp.mu.Unlock()
	if cerr == nil && kerr == nil && (kp.cert == nil || !cs.ModTime().Equal(kp.certMod) || !ks.ModTime().Equal(kp.keyMod)) {
		c, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
		switch {
		case err == nil:
			kp.cert, kp.certMod, kp.keyMod = &c, cs.ModTime(), ks.ModTime()
		case kp.cert == nil:
			return nil, err
		}
	}
	if kp.cert == nil {
		return nil, errors.Join(cerr, kerr)
	}
	return kp.cert, nil
}
