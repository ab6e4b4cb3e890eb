package translate

import (
	"fmt"
	"reflect"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// TLSTransportSocket is the name of the transport socket carrying a TLS
// context on clusters and listener filter chains (Envoy's).
const TLSTransportSocket = "envoy.transport_sockets.tls"

// settleListenerTLS gives the listener of each port of a host the TLS its
// DestinationPolicy asks for, whatever the policy's exportTo: a listener
// is the same in every view. Hosts share a listener when they share a
// port, and their policies must ask the same: the oldest policy asking
// wins, and a newer one asking otherwise has its listenerTls refused as a
// conflict.
func (t *translation) settleListenerTLS() {
	for _, dp := range t.in.DestinationPolicies {
		want := dp.Spec.ListenerTLS
		svc := t.services[string(dp.Spec.Host)]
		if want == nil || svc == nil || !attachedTo(svc, dp) {
			continue // no listener TLS, or a policy not attached
		}
		key := keyOf("DestinationPolicy", &dp.ObjectMeta)
		for _, sp := range svc.ports {
			p := t.ports[int32(sp.Number)]
			switch {
			case p == nil:
			case p.tls == nil:
				p.tls, p.tlsKey = want, key
			case !reflect.DeepEqual(p.tls, want):
				t.conflict(key, "spec.listenerTls", p.tlsKey,
					fmt.Sprintf("listener %s terminates TLS as %s says", ListenerName(p.protocol, p.number), p.tlsKey))
			}
		}
	}
}

// attachedTo reports whether dp is one of svc's policies (not refused).
func attachedTo(svc *service, dp *v1alpha1.DestinationPolicy) bool {
	return slices.ContainsFunc(svc.policies, func(a attached[*v1alpha1.DestinationPolicy]) bool { return a.obj == dp })
}

// listenerTLS is the transport socket of a listener terminating TLS as
// lt says.
func listenerTLS(lt *v1alpha1.ListenerTLS) *corev3.TransportSocket {
	ctx := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificates: []*tlsv3.TlsCertificate{{CertificateChain: file(lt.ServerCertificate), PrivateKey: file(lt.PrivateKey)}},
	}}
	if lt.Mode == v1alpha1.ServerTLSMutual {
		ctx.RequireClientCertificate = wrapperspb.Bool(true)
		ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{
			ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: file(lt.CACertificates)},
		}
	}
	return transportSocket(ctx)
}

// clusterTLS is the transport socket of a cluster originating TLS as ct
// says to host, or nil for plaintext.
func clusterTLS(ct *v1alpha1.ClientTLS, host string) *corev3.TransportSocket {
	if ct == nil || ct.Mode == v1alpha1.ClientTLSDisable {
		return nil
	}
	vc := &tlsv3.CertificateValidationContext{}
	if ct.CACertificates != "" {
		vc.TrustedCa = file(ct.CACertificates)
	}
	for _, san := range ct.SubjectAltNames {
		vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_DNS,
			Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: san}},
		})
	}
	if ct.InsecureSkipVerify {
		vc.TrustChainVerification = tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED
	}
	ctx := &tlsv3.UpstreamTlsContext{Sni: ct.SNI, CommonTlsContext: &tlsv3.CommonTlsContext{
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc},
	}}
	if ctx.Sni == "" {
		ctx.Sni = host
	}
	if ct.Mode == v1alpha1.ClientTLSMutual {
		ctx.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{CertificateChain: file(ct.ClientCertificate), PrivateKey: file(ct.PrivateKey)}}
	}
	return transportSocket(ctx)
}

func file(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

func transportSocket(ctx proto.Message) *corev3.TransportSocket {
	a, err := anypb.New(ctx)
	if err != nil {
		panic(fmt.Sprintf("translate: marshal TLS context: %v", err)) // a generated message always marshals
	}
	return &corev3.TransportSocket{Name: TLSTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}}
}
