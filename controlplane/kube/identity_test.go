package kube

import (
	"fmt"
	"reflect"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/metamesh/metamesh/controlplane/translate"
)

// TestPodServiceAccountIsExpectedIdentity: a Service's clusters expect,
// under mutual TLS between proxies, the SPIFFE IDs of the service
// accounts its pods run as (docs/kubernetes.md#expected-identities).
func TestPodServiceAccountIsExpectedIdentity(t *testing.T) {
	cfg, c := apiServer(t)
	ns := namespace(t, c, "identity")
	createService(t, c, ns, "greeter", 20890, "dubbo", "v1", "v2")
	src := startSource(t, cfg, Options{})

	cluster := translate.ClusterName(20890, "", "greeter."+ns+".svc.cluster.local")
	want := []string{"spiffe://example.org/ns/" + ns + "/sa/greeter-v1", "spiffe://example.org/ns/" + ns + "/sa/greeter-v2"}
	eventually(t, "the pods' identities", func() (bool, string) {
		in := src.latest.Load()
		if in == nil {
			return false, "nothing published"
		}
		got, err := expectedSANs(translate.Translate(in, translate.Options{TrustDomain: "example.org"}), cluster)
		if err != nil {
			return false, err.Error()
		}
		return reflect.DeepEqual(got, want), fmt.Sprintf("got %v, want %v", got, want)
	})
}

// expectedSANs are the SPIFFE IDs cluster's mutual TLS expects of its
// endpoints.
func expectedSANs(out *translate.Output, cluster string) ([]string, error) {
	for _, c := range out.Resources.Clusters {
		if c.GetName() != cluster {
			continue
		}
		for _, m := range c.GetTransportSocketMatches() {
			var ctx tlsv3.UpstreamTlsContext
			if m.GetTransportSocket().GetTypedConfig().UnmarshalTo(&ctx) != nil {
				continue // the plaintext one
			}
			var sans []string
			vc := ctx.GetCommonTlsContext().GetCombinedValidationContext().GetDefaultValidationContext()
			for _, san := range vc.GetMatchTypedSubjectAltNames() {
				sans = append(sans, san.GetMatcher().GetExact())
			}
			return sans, nil
		}
		return nil, fmt.Errorf("cluster %s has no mutual TLS", cluster)
	}
	return nil, fmt.Errorf("no cluster %s", cluster)
}
