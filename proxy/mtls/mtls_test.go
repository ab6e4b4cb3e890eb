package mtls_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/proxy/certs"
	"github.com/metamesh/metamesh/proxy/mtls"
)

const (
	greeter = "spiffe://cluster.local/ns/prod/sa/greeter"
	batch   = "spiffe://cluster.local/ns/batch/sa/worker"
)

func authority(t testing.TB) *ca.Authority {
	t.Helper()
	certPEM, keyPEM, err := ca.Generate("test root")
	if err != nil {
		t.Fatal(err)
	}
	a, err := ca.Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mesh is a proxy's Mesh with the identity id issued by a (none when a is
// nil), and its handshake counter.
func mesh(t testing.TB, a *ca.Authority, id string) (*mtls.Mesh, *prometheus.CounterVec) {
	t.Helper()
	store := certs.NewStore()
	if a != nil {
		c, err := a.IssueWorkload(spiffeid.RequireFromString(id), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ident, err := certs.New(c, []*x509.Certificate{a.Cert()})
		if err != nil {
			t.Fatal(err)
		}
		store.Set(ident)
	}
	hs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hs"}, []string{"side", "result"})
	return mtls.New(store, hs), hs
}

// pair connects client to server over 127.0.0.1 TCP and runs both
// handshakes, returning their errors and the client's connection state.
func pair(t testing.TB, server *tls.Config, client *tls.Config) (cs tls.ConnectionState, serr, cerr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		tc := tls.Server(nc, server)
		err = tc.HandshakeContext(context.Background())
		if err == nil {
			// The client's certificate is checked after the client's
			// handshake ends (TLS 1.3): answer one byte so it sees the
			// outcome.
			_, err = tc.Write([]byte{1})
		}
		done <- err
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	tc := tls.Client(nc, client)
	cerr = tc.HandshakeContext(context.Background())
	if cerr == nil {
		var b [1]byte
		_, cerr = io.ReadFull(tc, b[:])
		cs = tc.ConnectionState()
	}
	_ = nc.Close()
	return cs, <-done, cerr
}

func TestMutualTLS(t *testing.T) {
	a := authority(t)
	srv, _ := mesh(t, a, greeter)
	cli, chs := mesh(t, a, batch)
	cs, serr, cerr := pair(t, srv.Server(), cli.Client("outbound|20880||greeter", []spiffeid.ID{spiffeid.RequireFromString(greeter)}))
	if serr != nil || cerr != nil {
		t.Fatalf("handshake: server %v, client %v", serr, cerr)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", cs.Version)
	}
	if got := cs.PeerCertificates[0].URIs[0].String(); got != greeter {
		t.Errorf("the client saw %s, want %s", got, greeter)
	}
	if n := testutil.ToFloat64(chs.WithLabelValues(mtls.SideClient, mtls.ResultOK)); n != 1 {
		t.Errorf("client ok handshakes: %v, want 1", n)
	}
}

func TestRefusals(t *testing.T) {
	a := authority(t)
	srv, _ := mesh(t, a, greeter)
	other := spiffeid.RequireFromString("spiffe://cluster.local/ns/prod/sa/other")
	t.Run("server names another identity", func(t *testing.T) {
		cli, chs := mesh(t, a, batch)
		_, _, cerr := pair(t, srv.Server(), cli.Client("c", []spiffeid.ID{other}))
		if mtls.Result(cerr) != mtls.ResultBadPeer {
			t.Fatalf("client error %v (%s), want %s", cerr, mtls.Result(cerr), mtls.ResultBadPeer)
		}
		if n := testutil.ToFloat64(chs.WithLabelValues(mtls.SideClient, mtls.ResultBadPeer)); n != 1 {
			t.Errorf("client bad_peer handshakes: %v, want 1", n)
		}
	})
	t.Run("client of another root", func(t *testing.T) {
		// A client that takes any server and presents a certificate of
		// another root.
		c, err := authority(t).IssueWorkload(spiffeid.RequireFromString(batch), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{*c}}
		_, serr, cerr := pair(t, srv.Server(), cfg)
		if mtls.Result(serr) != mtls.ResultBadPeer || cerr == nil {
			t.Fatalf("server error %v (%s), client error %v: want the server to refuse the client as bad_peer", serr, mtls.Result(serr), cerr)
		}
	})
	t.Run("client without identity", func(t *testing.T) {
		cli, chs := mesh(t, nil, "")
		_, serr, cerr := pair(t, srv.Server(), cli.Client("c", nil))
		if serr == nil || cerr == nil {
			t.Fatalf("server error %v, client error %v: want both to fail", serr, cerr)
		}
		if n := testutil.ToFloat64(chs.WithLabelValues(mtls.SideClient, mtls.ResultNoIdentity)); n != 1 {
			t.Errorf("client no_identity handshakes: %v, want 1", n)
		}
	})
	t.Run("server without identity", func(t *testing.T) {
		bare, _ := mesh(t, nil, "")
		cli, _ := mesh(t, a, batch)
		_, serr, _ := pair(t, bare.Server(), cli.Client("c", nil))
		if mtls.Result(serr) != mtls.ResultNoIdentity {
			t.Fatalf("server error %v (%s), want %s", serr, mtls.Result(serr), mtls.ResultNoIdentity)
		}
	})
}

// TestRotation: a handshake after the store's identity changed presents
// the new certificate, with no new config.
func TestRotation(t *testing.T) {
	a := authority(t)
	srv, _ := mesh(t, a, greeter)
	cli, _ := mesh(t, a, batch)
	cfg := cli.Client("c", nil)
	before, _, _ := pair(t, srv.Server(), cfg)
	c, err := a.IssueWorkload(spiffeid.RequireFromString(greeter), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ident, err := certs.New(c, []*x509.Certificate{a.Cert()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Store().Set(ident)
	cfg.ClientSessionCache = nil // a resumed session would not show the server's certificate anew
	after, _, cerr := pair(t, srv.Server(), cfg)
	if cerr != nil {
		t.Fatal(cerr)
	}
	if before.PeerCertificates[0].SerialNumber.Cmp(after.PeerCertificates[0].SerialNumber) == 0 {
		t.Fatal("the server presented the same certificate after rotation")
	}
}

// TestIsTLS: a ClientHello's first byte is TLS, plaintext frames' are
// not.
func TestIsTLS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first byte
		want  bool
	}{
		{"dubbo", 0xda, false},
		{"redis", '*', false},
		{"triple", 'P', false},
		{"tls", 0x16, true},
	} {
		if got := mtls.IsTLS(tc.first); got != tc.want {
			t.Errorf("%s: IsTLS(%#x) = %v, want %v", tc.name, tc.first, got, tc.want)
		}
	}
}

// TestResumption: a cluster's second connection resumes the session of
// its first (no certificate signatures), and the server still knows the
// caller's certificate.
func TestResumption(t *testing.T) {
	a := authority(t)
	srv, _ := mesh(t, a, greeter)
	cli, _ := mesh(t, a, batch)
	cfg := cli.Client("c", []spiffeid.ID{spiffeid.RequireFromString(greeter)}).Clone()
	// Sessions are cached by server address; pair listens anew each time,
	// so name the server instead.
	cfg.ServerName = "greeter"
	if first, _, err := pair(t, srv.Server(), cfg); err != nil || first.DidResume {
		t.Fatalf("first connection: resumed %v, %v", first.DidResume, err)
	}
	second, serr, cerr := pair(t, srv.Server(), cfg)
	if serr != nil || cerr != nil || !second.DidResume {
		t.Fatalf("second connection: resumed %v, server %v, client %v; want resumed", second.DidResume, serr, cerr)
	}
}
