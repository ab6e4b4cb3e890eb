package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/accesslog"
	"github.com/metamesh/metamesh/proxy/authz"
)

// Listener is one proxy listener in a snapshot.
type Listener struct {
	Name      string
	Address   string
	CodecName string
	Codec     protocols.Codec
	// Triple is the codec of the connections that open with the HTTP/2
	// client preface, on a dubbo listener: Dubbo2 and Triple on one port
	// (docs/proxy-config.md). Nil on other listeners, and when no codec
	// is registered as TripleCodec.
	Triple         protocols.Codec
	RouteConfig    string
	StatPrefix     string
	DefaultService string
	// Bind says whether the proxy binds Address (bind_to_port, default
	// true). An unbound listener is served only through the capture ports
	// (docs/mesh-mode.md).
	Bind bool
	// AccessLog logs the listener's requests (nil: off).
	AccessLog *accesslog.Logger
	// TLS terminates TLS on its connections (nil: plaintext).
	TLS *tls.Config
	// MTLS is its mutual TLS between proxies, on the connections it
	// accepts and the inbound captured ones (never with TLS).
	MTLS MTLSMode
	// Authz checks the listener's requests before routing (nil: no
	// policy, every request is allowed).
	Authz *authz.Engine
	// OutboundAuthz is Authz without the policies that ask for the
	// caller's principal or namespace: what a sidecar's outbound capture
	// port checks (docs/authorization.md).
	OutboundAuthz *authz.Engine
}

// buildListener returns the listener and the original destinations it
// serves (CaptureTable).
func (b *Builder) buildListener(l *listenerv3.Listener) (*Listener, []captureEntryPort, error) {
	path := "listener " + l.GetName()
	if err := onlyFields(l, path, "name", "address", "filter_chains", "stat_prefix", "bind_to_port"); err != nil {
		return nil, nil, err
	}
	sa := l.GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, nil, fmt.Errorf("%s.address: a socket address is required", path)
	}
	chain, mode, err := listenerChains(l.GetFilterChains(), path)
	if err != nil {
		return nil, nil, err
	}
	if len(chain.GetFilters()) != 1 {
		return nil, nil, fmt.Errorf("%s.filter_chains: exactly one chain (or a tls and a raw_buffer one) with one %s filter is required", path, xdsapi.FilterName)
	}
	var serverCfg *tls.Config
	if mode == MTLSOff {
		// A filter_chain_match left unhonoured would serve traffic the
		// operator meant to filter.
		if err := onlyFields(chain, path+".filter_chains[0]", "name", "filters", "transport_socket"); err != nil {
			return nil, nil, err
		}
		if serverCfg, err = serverTLS(chain.GetTransportSocket(), path+".filter_chains[0].transport_socket"); err != nil {
			return nil, nil, err
		}
	}
	f := chain.GetFilters()[0]
	if err := onlyFields(f, path+".filter_chains[0].filters[0]", "name", "typed_config"); err != nil {
		return nil, nil, err
	}
	if f.GetName() != xdsapi.FilterName {
		return nil, nil, fmt.Errorf("%s.filter_chains[0].filters[0].name: %q, want %q", path, f.GetName(), xdsapi.FilterName)
	}
	var cfg xdsapi.MetaProtocolProxy
	if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		return nil, nil, fmt.Errorf("%s.filter_chains[0].filters[0].typed_config: %w", path, err)
	}
	codec, err := b.codec(cfg.GetCodec(), &cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: codec: %w", path, err)
	}
	var triple protocols.Codec
	if cfg.GetCodec() == dubboCodec && slices.Contains(protocols.Names(), TripleCodec) {
		if triple, err = b.codec(TripleCodec, nil); err != nil {
			return nil, nil, fmt.Errorf("%s: codec %s: %w", path, TripleCodec, err)
		}
	}
	prefix := cfg.GetStatPrefix()
	if prefix == "" {
		prefix = l.GetName()
	}
	alog, err := b.accessLog(cfg.GetAccessLog())
	if err != nil {
		return nil, nil, fmt.Errorf("%s.filter_chains[0].filters[0].typed_config.access_log: %w", path, err)
	}
	az, outboundAz, err := authorization(cfg.GetAuthorization(), path+".filter_chains[0].filters[0].typed_config.authorization")
	if err != nil {
		return nil, nil, err
	}
	built := &Listener{
		Authz:          az,
		OutboundAuthz:  outboundAz,
		AccessLog:      alog,
		Name:           l.GetName(),
		Address:        net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))),
		CodecName:      cfg.GetCodec(),
		Codec:          codec,
		Triple:         triple,
		RouteConfig:    cfg.GetRouteConfigName(),
		StatPrefix:     prefix,
		DefaultService: cfg.GetDefaultService(),
		Bind:           l.GetBindToPort() == nil || l.GetBindToPort().GetValue(),
		TLS:            serverCfg,
		MTLS:           mode,
	}
	captures, err := captureDestinations(built, cfg.GetCaptureDestinations(), path+".filter_chains[0].filters[0].typed_config")
	if err != nil {
		return nil, nil, err
	}
	return built, captures, nil
}

// The codecs a dubbo listener serves (Listener.Triple).
const (
	dubboCodec = "dubbo"
	// TripleCodec is the name of the codec a dubbo listener serves the
	// connections that open with the HTTP/2 client preface with.
	TripleCodec = "triple"
)

// accessLog returns the logger a listener's access_log asks for.
func (b *Builder) accessLog(al *xdsapi.AccessLog) (*accesslog.Logger, error) {
	if al.GetMode() == xdsapi.AccessLog_OFF {
		return nil, nil
	}
	share := 100.0
	if al.GetMode() == xdsapi.AccessLog_SAMPLED {
		share = al.GetSamplePercent()
	}
	f := accesslog.JSON
	if al.GetFormat() == xdsapi.AccessLog_TEXT {
		f = accesslog.Text
	}
	if b.AccessLogs == nil {
		b.AccessLogs = accesslog.NewSinks(func() {})
	}
	return b.AccessLogs.Logger(al.GetPath(), f, share)
}

// codec returns the codec for a name and config, reusing the instance a
// previous snapshot built from the same pair so upstream pools (keyed by
// codec) survive the swap.
func (b *Builder) codec(name string, cfg *xdsapi.MetaProtocolProxy) (protocols.Codec, error) {
	var raw []byte
	if cfg.GetCodecConfig() != nil {
		var err error
		if raw, err = protojson.Marshal(cfg.GetCodecConfig()); err != nil {
			return nil, err
		}
	}
	key := name + "\x00" + string(raw)
	if c, ok := b.codecs[key]; ok {
		b.nextCodecs[key] = c
		return c, nil
	}
	c, err := protocols.New(name, raw)
	if err != nil {
		return nil, err
	}
	b.nextCodecs[key] = c
	return c, nil
}
