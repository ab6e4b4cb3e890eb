package config

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rawbufferv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/metamesh/metamesh/proxy/cluster"
)

// Mutual TLS between proxies in Istio's xDS form (docs/mesh-mode.md,
// "Mutual TLS between proxies"): the SDS Secrets the proxy's identity
// travels as, the transport protocols of a listener's filter chains, and
// the endpoint metadata clusters' transport_socket_matches look at.
const (
	secretCert           = "default"
	secretRoots          = "ROOTCA"
	rawBufferSocket      = "envoy.transport_sockets.raw_buffer"
	transportSocketMatch = "envoy.transport_socket_match"
)

// MTLSMode is a listener's mutual TLS between proxies.
type MTLSMode uint8

// The modes: none (plaintext, or the listener's own TLS), both accepted,
// TLS only.
const (
	MTLSOff MTLSMode = iota
	MTLSPermissive
	MTLSStrict
)

func (m MTLSMode) String() string {
	return [...]string{"DISABLE", "PERMISSIVE", "STRICT"}[m]
}

// listenerChains reads a listener's filter chains: one chain (plaintext,
// or TLS of its own), or mutual TLS between proxies, a "tls" chain and,
// for PERMISSIVE, a "raw_buffer" one with the same filters. It returns
// the chain whose filters serve the listener, and the mode.
func listenerChains(chains []*listenerv3.FilterChain, path string) (*listenerv3.FilterChain, MTLSMode, error) {
	if len(chains) == 1 && chains[0].GetFilterChainMatch() == nil {
		return chains[0], MTLSOff, nil
	}
	var tlsChain, raw *listenerv3.FilterChain
	for i, c := range chains {
		cp := fmt.Sprintf("%s.filter_chains[%d]", path, i)
		if err := onlyFields(c, cp, "name", "filters", "transport_socket", "filter_chain_match"); err != nil {
			return nil, 0, err
		}
		m := c.GetFilterChainMatch()
		if err := onlyFields(m, cp+".filter_chain_match", "transport_protocol"); err != nil {
			return nil, 0, err
		}
		switch m.GetTransportProtocol() {
		case "tls":
			if tlsChain != nil {
				return nil, 0, fmt.Errorf("%s.filter_chain_match: a second tls chain", cp)
			}
			if err := meshServerSocket(c.GetTransportSocket(), cp+".transport_socket"); err != nil {
				return nil, 0, err
			}
			tlsChain = c
		case "raw_buffer":
			if raw != nil {
				return nil, 0, fmt.Errorf("%s.filter_chain_match: a second raw_buffer chain", cp)
			}
			if c.GetTransportSocket() != nil {
				return nil, 0, fmt.Errorf("%s.transport_socket: not allowed on a raw_buffer chain", cp)
			}
			raw = c
		default:
			return nil, 0, fmt.Errorf("%s.filter_chain_match.transport_protocol: %q, want tls or raw_buffer", cp, m.GetTransportProtocol())
		}
	}
	switch {
	case tlsChain == nil:
		return nil, 0, fmt.Errorf("%s.filter_chains: chains matching a transport protocol need a tls one (mutual TLS between proxies)", path)
	case raw == nil:
		return tlsChain, MTLSStrict, nil
	case !proto.Equal(&listenerv3.FilterChain{Filters: tlsChain.GetFilters()}, &listenerv3.FilterChain{Filters: raw.GetFilters()}):
		return nil, 0, fmt.Errorf("%s.filter_chains: the tls and raw_buffer chains must have the same filters", path)
	}
	return tlsChain, MTLSPermissive, nil
}

// sdsContext checks that common presents the proxy's workload
// certificate and verifies peers against the mesh's roots, both as SDS
// Secrets on the ADS stream, in TLS 1.3, and returns the SPIFFE IDs its
// validation context expects (none: any the roots vouch for).
func sdsContext(common *tlsv3.CommonTlsContext, path string) ([]spiffeid.ID, error) {
	if err := onlyFields(common, path, "tls_params", "tls_certificate_sds_secret_configs",
		"validation_context_sds_secret_config", "combined_validation_context"); err != nil {
		return nil, err
	}
	if v := common.GetTlsParams().GetTlsMinimumProtocolVersion(); v != tlsv3.TlsParameters_TLSv1_3 {
		return nil, fmt.Errorf("%s.tls_params.tls_minimum_protocol_version: %s, want TLSv1_3", path, v)
	}
	sds := common.GetTlsCertificateSdsSecretConfigs()
	if len(sds) != 1 || sds[0].GetName() != secretCert || sds[0].GetSdsConfig().GetAds() == nil {
		return nil, fmt.Errorf("%s.tls_certificate_sds_secret_configs: exactly the Secret %q over ADS is supported", path, secretCert)
	}
	roots, vc := common.GetValidationContextSdsSecretConfig(), (*tlsv3.CertificateValidationContext)(nil)
	if cv := common.GetCombinedValidationContext(); cv != nil {
		roots, vc = cv.GetValidationContextSdsSecretConfig(), cv.GetDefaultValidationContext()
	}
	if roots.GetName() != secretRoots || roots.GetSdsConfig().GetAds() == nil {
		return nil, fmt.Errorf("%s: the validation context must be the Secret %q over ADS", path, secretRoots)
	}
	vp := path + ".combined_validation_context.default_validation_context"
	if err := onlyFields(vc, vp, "match_typed_subject_alt_names"); err != nil {
		return nil, err
	}
	var ids []spiffeid.ID
	for i, m := range vc.GetMatchTypedSubjectAltNames() {
		exact := m.GetMatcher().GetExact()
		id, err := spiffeid.FromString(exact)
		if m.GetSanType() != tlsv3.SubjectAltNameMatcher_URI || err != nil {
			return nil, fmt.Errorf("%s.match_typed_subject_alt_names[%d]: only URI SPIFFE IDs matched exactly are supported", vp, i)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// meshServerSocket checks a tls chain's transport socket.
func meshServerSocket(ts *corev3.TransportSocket, path string) error {
	var ctx tlsv3.DownstreamTlsContext
	if err := tlsContext(ts, path, &ctx); err != nil {
		return err
	}
	cp := path + ".typed_config"
	if err := onlyFields(&ctx, cp, "common_tls_context", "require_client_certificate"); err != nil {
		return err
	}
	if !ctx.GetRequireClientCertificate().GetValue() {
		return fmt.Errorf("%s.require_client_certificate: must be true (mutual TLS)", cp)
	}
	ids, err := sdsContext(ctx.GetCommonTlsContext(), cp+".common_tls_context")
	if err == nil && len(ids) > 0 {
		err = fmt.Errorf("%s.common_tls_context: a listener accepts any caller the roots vouch for (authorization policies choose)", cp)
	}
	return err
}

// meshCluster reads a cluster's transport_socket_matches: mutual TLS to
// the endpoints whose envoy.transport_socket_match metadata has every
// field of its match, plaintext (raw_buffer) to those of another match.
// It returns nil for a cluster without matches.
func (b *Builder) meshCluster(c *clusterv3.Cluster, a *endpointv3.ClusterLoadAssignment, path string) (*cluster.MeshTLS, error) {
	matches := c.GetTransportSocketMatches()
	if len(matches) == 0 {
		return nil, nil
	}
	if c.GetTransportSocket() != nil {
		return nil, fmt.Errorf("%s.transport_socket: not supported with transport_socket_matches", path)
	}
	meshAt := -1
	var ids []spiffeid.ID
	for i, m := range matches {
		mp := fmt.Sprintf("%s.transport_socket_matches[%d]", path, i)
		if err := onlyFields(m, mp, "name", "match", "transport_socket"); err != nil {
			return nil, err
		}
		for k, v := range m.GetMatch().GetFields() {
			if _, ok := v.GetKind().(*structpb.Value_StringValue); !ok {
				return nil, fmt.Errorf("%s.match.%s: only strings are supported", mp, k)
			}
		}
		ts := m.GetTransportSocket()
		if ts.GetName() == rawBufferSocket {
			if !ts.GetTypedConfig().MessageIs(&rawbufferv3.RawBuffer{}) {
				return nil, fmt.Errorf("%s.transport_socket.typed_config: want a RawBuffer", mp)
			}
			continue
		}
		var ctx tlsv3.UpstreamTlsContext
		if err := tlsContext(ts, mp+".transport_socket", &ctx); err != nil {
			return nil, err
		}
		cp := mp + ".transport_socket.typed_config"
		if err := onlyFields(&ctx, cp, "common_tls_context", "sni"); err != nil {
			return nil, err
		}
		if meshAt >= 0 {
			return nil, fmt.Errorf("%s: one mutual TLS transport socket per cluster", mp)
		}
		var err error
		if ids, err = sdsContext(ctx.GetCommonTlsContext(), cp+".common_tls_context"); err != nil {
			return nil, err
		}
		meshAt = i
	}
	if meshAt < 0 {
		return nil, nil
	}
	hosts := map[*cluster.Host]struct{}{}
	for _, le := range a.GetEndpoints() {
		for _, ep := range le.GetLbEndpoints() {
			sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil || firstMatch(matches, ep.GetMetadata().GetFilterMetadata()[transportSocketMatch]) != meshAt {
				continue
			}
			hosts[b.host(hostPort(sa))] = struct{}{}
		}
	}
	key := "mesh|" + c.GetName()
	for _, id := range ids {
		key += "|" + id.String()
	}
	return &cluster.MeshTLS{TLS: b.Mesh.Client(c.GetName(), ids), Key: key, Hosts: hosts, Ready: b.Mesh.Ready}, nil
}

// firstMatch is the index of the first match all of whose fields md has
// (an empty match matches any endpoint), or -1.
func firstMatch(matches []*clusterv3.Cluster_TransportSocketMatch, md *structpb.Struct) int {
	for i, m := range matches {
		all := true
		for k, v := range m.GetMatch().GetFields() {
			if md.GetFields()[k].GetStringValue() != v.GetStringValue() || md.GetFields()[k] == nil {
				all = false
				break
			}
		}
		if all {
			return i
		}
	}
	return -1
}
