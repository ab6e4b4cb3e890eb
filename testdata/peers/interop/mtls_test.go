package interop

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/metamesh/metamesh/controlplane/ca"
	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
	"github.com/metamesh/metamesh/testdata/peers/thrift"
)

// The identities of the two sides of TestMutualTLSBetweenProxies.
const (
	greeterID  = "spiffe://cluster.local/ns/prod/sa/greeter"
	consumerID = "spiffe://cluster.local/ns/batch/sa/consumer"
)

// meshPKI is one mesh root, the control planes' serving certificate and
// the proxies' xDS client certificates, whose SPIFFE IDs name them
// (docs/identity.md, file mode), as files.
type meshPKI struct {
	root          *ca.Authority
	dir           string
	rootCert      string
	rootKey       string
	server, sKey  string
	clients, keys map[string]string // by SPIFFE ID
}

func newMeshPKI(t *testing.T, ids ...string) *meshPKI {
	t.Helper()
	certPEM, keyPEM, err := ca.Generate("mesh root")
	if err != nil {
		t.Fatal(err)
	}
	root, err := ca.Parse(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	p := &meshPKI{root: root, dir: t.TempDir(), clients: map[string]string{}, keys: map[string]string{}}
	p.rootCert, p.rootKey = p.write(t, "root.crt", certPEM), p.write(t, "root.key", keyPEM)
	serving, err := root.IssueServing([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p.server, p.sKey = p.pair(t, "server", serving)
	for i, id := range ids {
		c := p.workload(t, id)
		p.clients[id], p.keys[id] = p.pair(t, fmt.Sprintf("client-%d", i), c)
	}
	return p
}

func (p *meshPKI) write(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (p *meshPKI) pair(t *testing.T, name string, c *tls.Certificate) (string, string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})),
		p.write(t, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// workload is a certificate of the mesh's root for id, as a proxy's.
func (p *meshPKI) workload(t *testing.T, id string) *tls.Certificate {
	t.Helper()
	c, err := p.root.IssueWorkload(spiffeid.RequireFromString(id), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// meshSide is one side of a two-proxy mesh on loopback: a control plane
// on its own folder (the mesh root, 30 s workload certificates) and a
// proxy whose xDS client certificate names id, in namespace ns.
type meshSide struct {
	dir, admin, cpAdmin string
}

func startMeshSide(t *testing.T, bin string, p *meshPKI, id, node string, files map[string]string, cpArgs ...string) *meshSide {
	t.Helper()
	s := &meshSide{dir: t.TempDir(), admin: harness.FreeAddr(t), cpAdmin: harness.FreeAddr(t)}
	for name, content := range files {
		writeConfig(t, s.dir, name, content)
	}
	xdsAddr := harness.FreeAddr(t)
	harness.StartProcess(t, "metamesh controlplane ("+node+")", bin, append([]string{"controlplane", "--config", s.dir,
		"--xds", xdsAddr, "--admin", s.cpAdmin, "--listen-address", "127.0.0.1", "--log-format", "json",
		"--xds-cert", p.server, "--xds-key", p.sKey, "--xds-client-ca", p.rootCert,
		"--ca-cert", p.rootCert, "--ca-key", p.rootKey, "--workload-cert-ttl", "30s"}, cpArgs...)...)
	harness.StartProcess(t, "metamesh proxy ("+node+")", bin, "proxy", "--xds", xdsAddr, "--node", node, "--admin", s.admin,
		"--log-format", "json", "--xds-ca", p.rootCert, "--xds-server-name", "localhost",
		"--xds-cert", p.clients[id], "--xds-key", p.keys[id])
	waitFor(t, 30*time.Second, node+"'s workload certificate", func() bool { return s.cert(t).ID == id })
	return s
}

type certInfo struct {
	ID     string `json:"spiffe_id"`
	Serial string `json:"serial"`
}

func (s *meshSide) cert(t *testing.T) certInfo {
	var c certInfo
	_ = json.Unmarshal([]byte(get(t, s.admin, "/certs")), &c)
	return c
}

func (s *meshSide) handshakes(t *testing.T, side, result string) float64 {
	return metricValue(get(t, s.admin, "/metrics"), fmt.Sprintf(`metamesh_mtls_handshakes_total{result=%q,side=%q}`, result, side))
}

// edit replaces a config file and waits until the proxy's /config_dump
// matches want.
func (s *meshSide) edit(t *testing.T, name, content string, want *regexp.Regexp) {
	t.Helper()
	writeConfig(t, s.dir, name, content)
	waitFor(t, 20*time.Second, "the edit of "+name+" in the proxy's /config_dump", func() bool {
		return want.MatchString(get(t, s.admin, "/config_dump"))
	})
}

var (
	impostorExpected = regexp.MustCompile(`sa/impostor`)
	greeterExpected  = regexp.MustCompile(`ns/prod/sa/greeter"`)
	plaintextChain   = regexp.MustCompile(`"transportProtocol":\s*"raw_buffer"`)
)

// providerConfig is the provider side's greeter (the dubbo-go provider
// at app behind the proxy's port), Thrift and Redis services on ports
// whose upstreams the test never reaches, and the greeter's mutual TLS
// mode.
func providerConfig(listen, app, thriftListen, redisListen, mode string) map[string]string {
	return map[string]string{
		"greeter.yaml": greeterEntry(listen, app) + fmt.Sprintf(`---
apiVersion: metamesh.io/v1alpha1
kind: DestinationPolicy
metadata: {name: greeter, namespace: default}
spec:
  host: %s
  mtls: {mode: %s}
`, iface, mode),
		"others.yaml": fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.thrift]
  ports: [{number: %s, name: thrift, protocol: thrift}]
  endpoints: [{address: 127.0.0.1, ports: {thrift: 1}}]
---
apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.redis]
  ports: [{number: %s, name: redis, protocol: redis}]
  endpoints: [{address: 127.0.0.1, ports: {redis: 1}}]
`, portOf(thriftListen), portOf(redisListen)),
	}
}

// consumerEntry is the consumer side's greeter: its one endpoint is the
// provider's proxy, labelled as running a sidecar, expected to be san.
func consumerEntry(listen, provider, san string) string {
	return fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [%s]
  ports: [{number: %s, name: dubbo, protocol: dubbo}]
  subjectAltNames: [%s]
  endpoints: [{address: 127.0.0.1, ports: {dubbo: %s}, labels: {tlsMode: istio}}]
`, iface, portOf(listen), san, portOf(provider))
}

// TestMutualTLSBetweenProxies: a dubbo-go consumer calls through its
// proxy (namespace batch), which originates mutual TLS to the provider's
// proxy (namespace prod, STRICT), in front of a dubbo-go provider. Each
// side has its own control plane (file mode) signing with one mesh root.
// The provider's port speaks TLS 1.3 with its SPIFFE ID; plaintext Dubbo,
// Thrift and Redis clients are refused under STRICT; a consumer expecting
// another identity is refused (bad_peer); PERMISSIVE serves both;
// authorization by the caller's namespace, known from mutual TLS.
func TestMutualTLSBetweenProxies(t *testing.T) {
	bin := harness.BuildMetamesh(t)
	app := harness.StartGreeter(t, "v1")
	pki := newMeshPKI(t, greeterID, consumerID)
	provListen, thriftListen, redisListen, consListen := harness.FreeAddr(t), harness.FreeAddr(t), harness.FreeAddr(t), harness.FreeAddr(t)
	prov := startMeshSide(t, bin, pki, greeterID, "greeter-0.prod",
		providerConfig(provListen, app.Addr, thriftListen, redisListen, "STRICT"), "--mtls-mode", "STRICT")
	cons := startMeshSide(t, bin, pki, consumerID, "consumer-0.batch",
		map[string]string{"greeter.yaml": consumerEntry(consListen, provListen, greeterID)})
	ctx := context.Background()
	cl := newClient(t, consListen, dubboclient.Options{Timeout: 5 * time.Second})
	waitFor(t, 20*time.Second, "a call through both proxies", func() bool {
		got, err := cl.SayHello(ctx, "a")
		return err == nil && got == "v1|a"
	})
	if n := cons.handshakes(t, "client", "ok"); n < 1 {
		t.Errorf("the consumer's proxy counts %v client handshakes ok, want at least 1", n)
	}
	if n := prov.handshakes(t, "server", "ok"); n < 1 {
		t.Errorf("the provider's proxy counts %v server handshakes ok, want at least 1", n)
	}

	t.Run("TLS 1.3 with the provider's SPIFFE ID", func(t *testing.T) {
		cs := dialMesh(t, pki, provListen)
		if cs.Version != tls.VersionTLS13 {
			t.Errorf("version %#x, want TLS 1.3", cs.Version)
		}
		if got := cs.PeerCertificates[0].URIs[0].String(); got != greeterID {
			t.Errorf("the provider's proxy presented %s, want %s", got, greeterID)
		}
	})

	t.Run("plaintext refused under STRICT", func(t *testing.T) {
		before := prov.handshakes(t, "server", "plaintext_refused")
		if dc, err := dubboclient.NewWithOptions(provListen, iface, dubboclient.Options{Timeout: 2 * time.Second}); err == nil {
			_, err = dc.SayHello(ctx, "plain")
			_ = dc.Close()
			if err == nil {
				t.Error("a plaintext dubbo-go call to the STRICT port was served")
			}
		}
		if tc, err := thrift.Open(thriftListen, thrift.Combos[0], ""); err == nil {
			_, err = tc.Echo(ctx, "plain")
			_ = tc.Close()
			if err == nil {
				t.Error("a plaintext Thrift call to the STRICT port was served")
			}
		}
		rc := redis.NewClient(&redis.Options{Addr: redisListen, Protocol: 2, MaxRetries: -1, DisableIdentity: true})
		if err := rc.Ping(ctx).Err(); err == nil {
			t.Error("a plaintext Redis PING to the STRICT port was answered")
		}
		_ = rc.Close()
		waitFor(t, 5*time.Second, "three plaintext refusals counted", func() bool {
			return prov.handshakes(t, "server", "plaintext_refused") >= before+3
		})
		if got, err := cl.SayHello(ctx, "b"); err != nil || got != "v1|b" {
			t.Fatalf("a call through both proxies after the refusals: %q, %v", got, err)
		}
	})

	t.Run("another identity than expected refused", func(t *testing.T) {
		before := cons.handshakes(t, "client", "bad_peer")
		cons.edit(t, "greeter.yaml", consumerEntry(consListen, provListen, "spiffe://cluster.local/ns/prod/sa/impostor"), impostorExpected)
		if _, err := cl.SayHello(ctx, "c"); err == nil {
			t.Fatal("a call expecting another identity than the provider's was served")
		}
		if n := cons.handshakes(t, "client", "bad_peer"); n <= before {
			t.Errorf("the consumer's proxy counts %v bad_peer handshakes, want more than %v", n, before)
		}
		cons.edit(t, "greeter.yaml", consumerEntry(consListen, provListen, greeterID), greeterExpected)
		waitFor(t, 10*time.Second, "calls to the expected identity again", func() bool {
			got, err := cl.SayHello(ctx, "d")
			return err == nil && got == "v1|d"
		})
	})

	t.Run("PERMISSIVE serves both", func(t *testing.T) {
		files := providerConfig(provListen, app.Addr, thriftListen, redisListen, "PERMISSIVE")
		prov.edit(t, "greeter.yaml", files["greeter.yaml"], plaintextChain)
		plain := newClient(t, provListen, dubboclient.Options{Timeout: 5 * time.Second})
		if got, err := plain.SayHello(ctx, "plain"); err != nil || got != "v1|plain" {
			t.Fatalf("a plaintext call to the PERMISSIVE port: %q, %v", got, err)
		}
		if got, err := cl.SayHello(ctx, "mtls"); err != nil || got != "v1|mtls" {
			t.Fatalf("a call through both proxies to the PERMISSIVE port: %q, %v", got, err)
		}

		// Authorization by the caller's namespace: only the consumer's
		// proxy (batch, from its certificate) may call sayHello; the
		// plaintext caller has no namespace.
		prov.edit(t, "authz.yaml", strings.Replace(allowSayHello(false), "{ipBlocks: [127.0.0.0/8]}", "{namespaces: [batch]}", 1), namespacesBatch)
		const policy = "default/greeter-allow-sayhello"
		if got, err := cl.SayHello(ctx, "e"); err != nil || got != "v1|e" {
			t.Fatalf("sayHello from namespace batch: %q, %v", got, err)
		}
		_, err := cl.Attachment(ctx, "k")
		denied(t, "attachment from namespace batch", err, policy)
		_, err = plain.SayHello(ctx, "f")
		denied(t, "sayHello from a plaintext caller", err, policy)
	})
}

// dialMesh opens a TLS connection to addr as a proxy of namespace batch
// would (a workload certificate of the mesh root), checks the server's
// chain against the root, and returns the connection's state.
func dialMesh(t *testing.T, p *meshPKI, addr string) tls.ConnectionState {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(p.root.Cert())
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*p.workload(t, consumerID)},
		InsecureSkipVerify: true, // the server names a SPIFFE ID, checked below
		VerifyConnection: func(cs tls.ConnectionState) error {
			opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}}
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer nc.Close()
	return nc.ConnectionState()
}

// twoPortGreeter is the provider side's greeter on two ports, both to app.
func twoPortGreeter(listen, listen2, app string) string {
	return fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: default}
spec:
  hosts: [%s]
  ports: [{number: %s, name: dubbo, protocol: dubbo}, {number: %s, name: dubbo2, protocol: dubbo}]
  endpoints: [{address: 127.0.0.1, ports: {dubbo: %s, dubbo2: %s}}]
`, iface, portOf(listen), portOf(listen2), portOf(app), portOf(app))
}

// TestMutualTLSRotationUnderLoad: with 10 s workload certificates, both
// proxies get new ones (at about half their lifetime) while 8 callers
// call through them without pause; then the consumer's greeter gains a
// second endpoint (the provider's other port), so its proxy dials a new
// connection, whose full handshake (a new address: no session to resume)
// presents both rotated certificates, each verified by the other side.
// No call fails, and a new handshake presents the new certificate.
func TestMutualTLSRotationUnderLoad(t *testing.T) {
	bin := harness.BuildMetamesh(t)
	app := harness.StartGreeter(t, "v1")
	pki := newMeshPKI(t, greeterID, consumerID)
	provListen, provListen2, consListen := harness.FreeAddr(t), harness.FreeAddr(t), harness.FreeAddr(t)
	prov := startMeshSide(t, bin, pki, greeterID, "greeter-0.prod",
		map[string]string{"greeter.yaml": twoPortGreeter(provListen, provListen2, app.Addr)}, "--mtls-mode", "STRICT", "--workload-cert-ttl", "10s")
	cons := startMeshSide(t, bin, pki, consumerID, "consumer-0.batch",
		map[string]string{"greeter.yaml": consumerEntry(consListen, provListen, greeterID)}, "--workload-cert-ttl", "10s")
	provFirst, consFirst := prov.cert(t).Serial, cons.cert(t).Serial
	cl := newClient(t, consListen, dubboclient.Options{Timeout: 10 * time.Second})
	ctx := context.Background()
	waitFor(t, 20*time.Second, "a call through both proxies", func() bool {
		_, err := cl.SayHello(ctx, "warm")
		return err == nil
	})

	var calls, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				want := payload(g, i)
				got, err := cl.SayHello(ctx, want)
				calls.Add(1)
				if err != nil || got != "v1|"+want {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%q, %v", got, err))
				}
			}
		}()
	}
	waitFor(t, 20*time.Second, "both proxies' certificates to rotate", func() bool {
		return prov.cert(t).Serial != provFirst && cons.cert(t).Serial != consFirst
	})
	handshakes := prov.handshakes(t, "server", "ok")
	second := strings.Replace(consumerEntry(consListen, provListen, greeterID), "labels: {tlsMode: istio}}]",
		fmt.Sprintf("labels: {tlsMode: istio}}, {address: 127.0.0.1, ports: {dubbo: %s}, labels: {tlsMode: istio}}]", portOf(provListen2)), 1)
	cons.edit(t, "greeter.yaml", second, regexp.MustCompile(`"portValue":\s*`+portOf(provListen2)+`\b`))
	waitFor(t, 10*time.Second, "a new handshake between the proxies on the rotated certificates", func() bool {
		return prov.handshakes(t, "server", "ok") > handshakes
	})
	time.Sleep(time.Second) // calls on the new connection
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d calls failed across the rotation; first: %v", failed.Load(), calls.Load(), firstErr.Load())
	}
	t.Logf("%d calls across the rotation, none failed", calls.Load())
	cs := dialMesh(t, pki, provListen)
	if cs.PeerCertificates[0].SerialNumber.Text(16) == provFirst {
		t.Fatal("a new handshake presents the certificate from before the rotation")
	}
}
