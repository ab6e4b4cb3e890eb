package config

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The test certificates: a CA, a server certificate for cache.redis,
// localhost and 127.0.0.1, and a client certificate.
const certs = "../../testdata/tls/"

func socket(t *testing.T, ctx proto.Message) *corev3.TransportSocket {
	t.Helper()
	a, err := anypb.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &corev3.TransportSocket{Name: tlsSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}
}

func fileSource(name string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: name}}
}

func upstreamCtx(sans ...string) *tlsv3.UpstreamTlsContext {
	vc := &tlsv3.CertificateValidationContext{TrustedCa: fileSource(certs + "ca.pem")}
	for _, s := range sans {
		vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_DNS, Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}})
	}
	return &tlsv3.UpstreamTlsContext{Sni: "cache.redis", CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificates:       []*tlsv3.TlsCertificate{{CertificateChain: fileSource(certs + "client.pem"), PrivateKey: fileSource(certs + "client-key.pem")}},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc},
	}}
}

func downstreamCtx() *tlsv3.DownstreamTlsContext {
	return &tlsv3.DownstreamTlsContext{RequireClientCertificate: wrapperspb.Bool(true), CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificates: []*tlsv3.TlsCertificate{{CertificateChain: fileSource(certs + "server.pem"), PrivateKey: fileSource(certs + "server-key.pem")}},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: fileSource(certs + "ca.pem")}},
	}}
}

// handshake runs a TLS handshake between the two configs over loopback
// and returns the client's error.
func handshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_ = tls.Server(nc, server).Handshake()
	}()
	nc, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	return tls.Client(nc, client).Handshake()
}

func TestTLSHandshakes(t *testing.T) {
	server, err := serverTLS(socket(t, downstreamCtx()), "listener l")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ctx  *tlsv3.UpstreamTlsContext
		ok   bool
	}{
		{"the SNI named by the server's certificate", upstreamCtx(), true},
		{"one of the alt names named", upstreamCtx("users.example.com", "localhost"), true},
		{"no alt name named", upstreamCtx("users.example.com"), false},
	} {
		client, key, err := clientTLS(socket(t, tc.ctx), "cluster c")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if key == "" {
			t.Fatalf("%s: no key for the pool", tc.name)
		}
		if err := handshake(t, server, client); (err == nil) != tc.ok {
			t.Errorf("%s: handshake error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	anon := upstreamCtx()
	anon.CommonTlsContext.TlsCertificates = nil
	client, _, err := clientTLS(socket(t, anon), "cluster c")
	if err != nil {
		t.Fatal(err)
	}
	// TLS 1.2: with 1.3 a client learns of its refusal at its first read.
	client.MaxVersion = tls.VersionTLS12
	if err := handshake(t, server, client); err == nil {
		t.Error("a client without a certificate was accepted by a listener requiring one")
	}
}

func TestTLSRejects(t *testing.T) {
	missingCA := upstreamCtx()
	missingCA.CommonTlsContext.GetValidationContext().TrustedCa = fileSource(certs + "nope.pem")
	prefixSAN := upstreamCtx("x")
	prefixSAN.CommonTlsContext.GetValidationContext().MatchTypedSubjectAltNames[0].Matcher =
		&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "x"}}
	alpn := upstreamCtx()
	alpn.CommonTlsContext.AlpnProtocols = []string{"h2"}
	badKey := upstreamCtx()
	badKey.CommonTlsContext.TlsCertificates[0].PrivateKey = fileSource(certs + "server-key.pem")
	for name, tc := range map[string]struct {
		ctx  *tlsv3.UpstreamTlsContext
		want string
	}{
		"a missing CA file":     {missingCA, "cluster c.typed_config.common_tls_context.validation_context.trusted_ca: open " + certs + "nope.pem"},
		"a prefix alt name":     {prefixSAN, "match_typed_subject_alt_names[0]: only DNS names matched exactly"},
		"ALPN":                  {alpn, "common_tls_context.alpn_protocols: not supported"},
		"a key of another cert": {badKey, "tls_certificates[0]: tls: private key does not match public key"},
	} {
		if _, _, err := clientTLS(socket(t, tc.ctx), "cluster c"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", name, err, tc.want)
		}
	}
	noCA := downstreamCtx()
	noCA.CommonTlsContext.ValidationContextType = nil
	if _, err := serverTLS(socket(t, noCA), "listener l"); err == nil || !strings.Contains(err.Error(), "trusted_ca: required") {
		t.Errorf("mutual TLS without a CA: error %v", err)
	}
	wrong := &corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer"}
	if _, err := serverTLS(wrong, "listener l"); err == nil || !strings.Contains(err.Error(), "listener l.name") {
		t.Errorf("another transport socket: error %v", err)
	}
}

// TestKeyPairRotates: a certificate replaced on disk is used from the next
// handshake on, without a new config.
func TestKeyPairRotates(t *testing.T) {
	dir := t.TempDir()
	copyFile := func(from, to string) {
		b, err := os.ReadFile(certs + from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("server.pem", "cert.pem")
	copyFile("server-key.pem", "key.pem")
	kp, err := keyPairOf(&tlsv3.TlsCertificate{CertificateChain: fileSource(filepath.Join(dir, "cert.pem")),
		PrivateKey: fileSource(filepath.Join(dir, "key.pem"))}, "c")
	if err != nil {
		t.Fatal(err)
	}
	first, _ := kp.get()
	copyFile("client.pem", "cert.pem")
	copyFile("client-key.pem", "key.pem")
	later := time.Now().Add(time.Minute)
	for _, f := range []string{"cert.pem", "key.pem"} {
		if err := os.Chtimes(filepath.Join(dir, f), later, later); err != nil {
			t.Fatal(err)
		}
	}
	second, err := kp.get()
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Certificate[0]) == string(second.Certificate[0]) {
		t.Fatal("the rotated certificate was not read")
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if third, err := kp.get(); err != nil || third != second {
		t.Fatalf("a broken file: %v; want the last good pair kept", err)
	}
}
