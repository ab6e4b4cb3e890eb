package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// endpointAccountEntry is a greeter ServiceEntry of namespace prod whose
// one endpoint, at provider, runs a sidecar as service account sa: the
// identity callers expect is spiffe://cluster.local/ns/prod/sa/<sa>.
func endpointAccountEntry(listen, provider, sa string) string {
	return fmt.Sprintf(`apiVersion: metamesh.io/v1alpha1
kind: ServiceEntry
metadata: {name: greeter, namespace: prod}
spec:
  hosts: [%s]
  ports: [{number: %s, name: dubbo, protocol: dubbo}]
  endpoints: [{address: 127.0.0.1, ports: {dubbo: %s}, labels: {tlsMode: istio}, serviceAccount: %s}]
`, iface, portOf(listen), portOf(provider), sa)
}

// TestRunMutualTLS: two `metamesh run`s, each given its workload identity
// by --identity-cert, between a real dubbo-go consumer and provider: the
// consumer's originates mutual TLS expecting the identity of its
// endpoint's serviceAccount, the provider's (STRICT) terminates it and
// allows sayHello to namespace batch only, known from the caller's
// certificate; a plaintext caller is refused, and so is a provider whose
// identity is not the endpoint's service account.
func TestRunMutualTLS(t *testing.T) {
	t.Parallel()
	bin := harness.BuildMetamesh(t)
	app := harness.StartGreeter(t, "v1")
	pki := newMeshPKI(t)
	ident := func(name, id string) []string {
		cert, key := pki.pair(t, name, pki.workload(t, id))
		return []string{"--identity-cert", cert, "--identity-key", key, "--identity-roots", pki.rootCert}
	}
	provListen, consListen := harness.FreeAddr(t), harness.FreeAddr(t)
	provDir, consDir := t.TempDir(), t.TempDir()
	writeConfig(t, provDir, "greeter.yaml", greeterEntry(provListen, app.Addr))
	writeConfig(t, provDir, "authz.yaml", strings.Replace(allowSayHello(false), "{ipBlocks: [127.0.0.0/8]}", "{namespaces: [batch]}", 1))
	writeConfig(t, consDir, "greeter.yaml", endpointAccountEntry(consListen, provListen, "greeter"))
	startRun(t, bin, provDir, harness.FreeAddr(t), provListen, &harness.SyncBuffer{},
		append([]string{"--mtls-mode", "STRICT"}, ident("greeter", greeterID)...)...)
	consAdmin := harness.FreeAddr(t)
	startRun(t, bin, consDir, consAdmin, consListen, &harness.SyncBuffer{}, ident("consumer", consumerID)...)

	ctx := context.Background()
	cl := newClient(t, consListen, dubboclient.Options{Timeout: 5 * time.Second})
	waitFor(t, 20*time.Second, "a call through both runs", func() bool {
		got, err := cl.SayHello(ctx, "a")
		return err == nil && got == "v1|a"
	})
	const policy = "default/greeter-allow-sayhello"
	_, err := cl.Attachment(ctx, "k")
	denied(t, "attachment from namespace batch", err, policy)

	if cs := dialMesh(t, pki, provListen); cs.PeerCertificates[0].URIs[0].String() != greeterID {
		t.Errorf("the provider's run presented %s, want %s", cs.PeerCertificates[0].URIs[0], greeterID)
	}
	if dc, err := dubboclient.NewWithOptions(provListen, iface, dubboclient.Options{Timeout: 2 * time.Second}); err == nil {
		_, err = dc.SayHello(ctx, "plain")
		_ = dc.Close()
		if err == nil {
			t.Error("a plaintext dubbo-go call to the STRICT run was served")
		}
	}

	writeConfig(t, consDir, "greeter.yaml", endpointAccountEntry(consListen, provListen, "impostor"))
	waitFor(t, 20*time.Second, "the consumer's run to expect sa/impostor", func() bool {
		return impostorExpected.MatchString(get(t, consAdmin, "/config_dump"))
	})
	if _, err := cl.SayHello(ctx, "b"); err == nil {
		t.Fatal("a call to an endpoint presenting another identity than its service account's was served")
	}
}
