package translate

import (
	"fmt"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// Mutual TLS between proxies in Istio's xDS form
// (docs/mesh-mode.md#mutual-tls-between-proxies): a listener's
// "tls" filter chain terminates it with the SDS Secrets SecretCert and
// SecretRoots (the proxy's workload identity, docs/identity.md), its
// "raw_buffer" chain (PERMISSIVE only) serves plaintext; a cluster
// originates it, through transport_socket_matches, to the endpoints whose
// metadata says they run a sidecar.
const (
	SecretCert  = "default"
	SecretRoots = "ROOTCA"
	// TransportSocketMatch is the endpoint metadata key cluster
	// transport_socket_matches look at (Envoy's), and TLSModeKey the field
	// in it: TLSModeMesh for an endpoint that runs a sidecar.
	TransportSocketMatch = "envoy.transport_socket_match"
	TLSModeKey           = "tlsMode"
	TLSModeMesh          = "istio"
	// RawBufferTransportSocket is plaintext (Envoy's name).
	RawBufferTransportSocket = "envoy.transport_sockets.raw_buffer"
)

// TLSModeLabels are the endpoint labels that say it runs a sidecar, with
// the value TLSModeMesh: tlsMode (ServiceEntry endpoints) and Istio's pod
// label, which the injector sets (Kubernetes).
var TLSModeLabels = []string{TLSModeKey, "security.istio.io/tlsMode"}

// settleMTLS gives each port's listener its mutual TLS mode: that of the
// DestinationPolicies of its services that set one (the oldest wins; a
// newer one asking otherwise is a conflict), else Options.MTLSMode. A
// port whose listener terminates TLS of its own (listenerTls) has none.
func (t *translation) settleMTLS() {
	keys := map[*port]string{}
	for _, dp := range t.in.DestinationPolicies {
		want := dp.Spec.MTLS
		svc := t.services[string(dp.Spec.Host)]
		if want == nil || svc == nil || !attachedTo(svc, dp) {
			continue
		}
		key := keyOf("DestinationPolicy", &dp.ObjectMeta)
		for _, sp := range svc.ports {
			p := t.ports[int32(sp.Number)]
			switch {
			case p == nil:
			case p.tls != nil && want.Mode != v1alpha1.MTLSDisable:
				t.conflict(key, "spec.mtls", p.tlsKey,
					fmt.Sprintf("listener %s terminates TLS as %s says", ListenerName(p.protocol, p.number), p.tlsKey))
			case keys[p] == "":
				p.mtls, keys[p] = want.Mode, key
			case p.mtls != want.Mode:
				t.conflict(key, "spec.mtls.mode", keys[p],
					fmt.Sprintf("listener %s's mutual TLS mode is %s, as %s says", ListenerName(p.protocol, p.number), p.mtls, keys[p]))
			}
		}
	}
	def := t.opts.MTLSMode
	if def == "" {
		def = v1alpha1.MTLSPermissive
	}
	for _, p := range t.ports {
		switch {
		case p.tls != nil:
			p.mtls = v1alpha1.MTLSDisable
		case p.mtls == "":
			p.mtls = def
		}
	}
}

// mtlsChains are the filter chains of a listener whose mode is mode,
// each with filters: the tls chain, then (PERMISSIVE) the raw_buffer one.
func mtlsChains(mode v1alpha1.MTLSMode, filters []*listenerv3.Filter) []*listenerv3.FilterChain {
	ctx := &tlsv3.DownstreamTlsContext{
		CommonTlsContext:         meshTLSContext(nil),
		RequireClientCertificate: wrapperspb.Bool(true),
	}
	chains := []*listenerv3.FilterChain{{
		Name:             "mtls",
		FilterChainMatch: &listenerv3.FilterChainMatch{TransportProtocol: "tls"},
		Filters:          filters,
		TransportSocket:  transportSocket(ctx),
	}}
	if mode == v1alpha1.MTLSPermissive {
		chains = append(chains, &listenerv3.FilterChain{
			Name:             "plaintext",
			FilterChainMatch: &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"},
			Filters:          filters,
		})
	}
	return chains
}

// meshTLSContext presents the SecretCert identity and verifies peers
// against SecretRoots, in TLS 1.3; sans, when given, are the SPIFFE IDs
// the peer may present.
func meshTLSContext(sans []string) *tlsv3.CommonTlsContext {
	ads := &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion: corev3.ApiVersion_V3}
	roots := &tlsv3.SdsSecretConfig{Name: SecretRoots, SdsConfig: ads}
	common := &tlsv3.CommonTlsContext{
		TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_3},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: SecretCert, SdsConfig: ads}},
		ValidationContextType:          &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: roots},
	}
	if len(sans) > 0 {
		vc := &tlsv3.CertificateValidationContext{}
		for _, san := range sans {
			vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
				SanType: tlsv3.SubjectAltNameMatcher_URI,
				Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: san}},
			})
		}
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         vc,
				ValidationContextSdsSecretConfig: roots,
			},
		}
	}
	return common
}

// meshSocketMatches are the transport_socket_matches of a cluster of svc
// whose endpoints' proxies run mode: mutual TLS to the endpoints labelled
// as running a sidecar, plaintext to the others; none when mode is
// DISABLE or the DestinationPolicy in force says how to speak TLS itself
// (spec.tls). The endpoints must present one of expectedIdentities.
// Clusters expecting the same identities share one slice (read only, as
// every message the translator outputs): most expect none, and building
// it per cluster was a quarter of a large mesh's allocations.
func (t *translation) meshSocketMatches(svc *service, mode v1alpha1.MTLSMode) []*clusterv3.Cluster_TransportSocketMatch {
	if mode == v1alpha1.MTLSDisable || mode == "" || (svc.policy != nil && svc.policy.Spec.TLS != nil) {
		return nil
	}
	ids := expectedIdentities(svc, t.opts.TrustDomain)
	key := strings.Join(ids, "\x00")
	if m, ok := t.cache.socketMatches[key]; ok {
		return m
	}
	ctx := &tlsv3.UpstreamTlsContext{CommonTlsContext: meshTLSContext(ids)}
	raw, err := anypb.New(&rawbufferv3.RawBuffer{})
	if err != nil {
		panic(fmt.Sprintf("translate: marshal RawBuffer: %v", err)) // a generated message always marshals
	}
	m := []*clusterv3.Cluster_TransportSocketMatch{
		{Name: "tlsMode-istio", Match: meshMatch(), TransportSocket: transportSocket(ctx)},
		{Name: "tlsMode-disabled", Match: &structpb.Struct{}, TransportSocket: &corev3.TransportSocket{
			Name: RawBufferTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: raw}}},
	}
	mapSet(&t.cache.socketMatches, key, m)
	return m
}

// meshMatch is {tlsMode: istio}: the metadata of an endpoint that runs a
// sidecar, and what the cluster's mutual TLS match looks for.
func meshMatch() *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{TLSModeKey: structpb.NewStringValue(TLSModeMesh)}}
}

// expectedIdentities are the SPIFFE IDs svc's endpoints may present, as
// Istio derives them: its subjectAltNames and, in trustDomain, the
// service accounts of its endpoints (a Service's: its Pods'), sorted. None
// (any identity the root vouches for) when it names neither.
func expectedIdentities(svc *service, trustDomain string) []string {
	ids := slices.Clone(svc.entry.Spec.SubjectAltNames)
	for _, ep := range svc.entry.Spec.Endpoints {
		if ep.ServiceAccount != "" && trustDomain != "" {
			ids = append(ids, "spiffe://"+trustDomain+"/ns/"+svc.entry.Namespace+"/sa/"+ep.ServiceAccount)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// meshEndpoint is the transport_socket_match metadata of an endpoint
// with labels, or nil when they don't say it runs a sidecar.
func meshEndpoint(labels map[string]string) *structpb.Struct {
	for _, k := range TLSModeLabels {
		if labels[k] == TLSModeMesh {
			return meshMatch()
		}
	}
	return nil
}
