package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// bootstrapConfig is what the proxy's bootstrap file needs: where the
// proxy listens, the codec and service of the traffic, and the server
// behind it.
type bootstrapConfig struct {
	Listen   string // host:port of the proxy listener
	Codec    string // the listener's codec: dubbo, thrift
	Service  string // the service routed: the virtual host's domain
	Upstream string // host:port of the server
	// DefaultService is the listener's service for requests that name
	// none (Thrift calls without a TMultiplexedProtocol prefix); optional.
	DefaultService string
	// AccessLog, when set, is the file the listener's access log writes
	// AccessLogPercent of the requests to (JSON lines); optional.
	AccessLog        string
	AccessLogPercent float64
	// MirrorPercent, when not zero, mirrors that share of the requests
	// to a second cluster of the same server (the copies' replies are
	// discarded).
	MirrorPercent int
	// MTLSListener makes the listener accept mutual TLS between proxies
	// only (STRICT, the proxy's --identity-* files); MTLSUpstream makes
	// the cluster originate it to its endpoint, a proxy expected to be
	// that SPIFFE ID (docs/mesh-mode.md).
	MTLSListener bool
	MTLSUpstream string
	// GlobalLimit, when set, gives the virtual host a global rate limit.
	GlobalLimit *globalLimitConfig
}

// globalLimitConfig is a global rate limit (docs/rate-limiting.md) with
// one descriptor entry, the request's method, asking the rate-limit
// service at Service (host:port, the cluster "rls") about the requests
// whose method is Match ("": every request).
type globalLimitConfig struct {
	Service string
	Match   string
}

// bootstrapTmpl is a `metamesh proxy --bootstrap` file: one listener with
// the meta-protocol filter, one route config sending the service to one
// STATIC cluster of one endpoint.
var bootstrapTmpl = template.Must(template.New("bootstrap").Parse(`# Written by metamesh-bench.
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: {{.Codec}}
  address: {socket_address: {address: "{{.ListenHost}}", port_value: {{.ListenPort}}}}
  filter_chains:
  - {{- if .MTLSListener}}
    name: mtls
    filter_chain_match: {transport_protocol: tls}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
        require_client_certificate: true
        common_tls_context:
          tls_params: {tls_minimum_protocol_version: TLSv1_3}
          tls_certificate_sds_secret_configs: [{name: default, sds_config: {ads: {}}}]
          validation_context_sds_secret_config: {name: ROOTCA, sds_config: {ads: {}}}
    {{- end}}
    filters:
    - name: metamesh.meta_protocol_proxy
      typed_config:
        "@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy
        stat_prefix: bench
        codec: {{.Codec}}
        route_config_name: {{.Codec}}
{{- if .DefaultService}}
        default_service: "{{.DefaultService}}"
{{- end}}
{{- if .AccessLog}}
        access_log: {mode: SAMPLED, sample_percent: {{.AccessLogPercent}}, format: JSON, path: "{{.AccessLog}}"}
{{- end}}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: {{.Codec}}
  virtual_hosts:
  - name: server
    domains: ["{{.Service}}"]
{{- with .GlobalLimit}}
    typed_per_filter_config:
      metamesh.global_rate_limit:
        "@type": type.googleapis.com/metamesh.proxy.v1alpha1.GlobalRateLimit
        domain: bench
        rate_limit_service: rls
        request_timeout: 1s
        descriptors: [{property: method, descriptor_key: method}]
{{- if .Match}}
        match: [{name: method, exact: "{{.Match}}"}]
{{- end}}
{{- end}}
    routes:
    - name: all
      match: {prefix: ""}
      route:
        cluster: server
{{- if .MirrorPercent}}
        request_mirror_policies: [{cluster: mirror, runtime_fraction: {default_value: {numerator: {{.MirrorPercent}}}}}]
{{- end}}
{{- range .Clusters}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: {{.}}
  type: STATIC
  connect_timeout: 1s
  lb_policy: ROUND_ROBIN
{{- if $.MTLSUpstream}}
  transport_socket_matches:
  - name: tlsMode-istio
    match: {tlsMode: istio}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        common_tls_context:
          tls_params: {tls_minimum_protocol_version: TLSv1_3}
          tls_certificate_sds_secret_configs: [{name: default, sds_config: {ads: {}}}]
          combined_validation_context:
            default_validation_context:
              match_typed_subject_alt_names: [{san_type: URI, matcher: {exact: "{{$.MTLSUpstream}}"}}]
            validation_context_sds_secret_config: {name: ROOTCA, sds_config: {ads: {}}}
{{- end}}
  load_assignment:
    cluster_name: {{.}}
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: "{{$.UpstreamHost}}", port_value: {{$.UpstreamPort}}}}}
{{- if $.MTLSUpstream}}
        metadata: {filter_metadata: {envoy.transport_socket_match: {tlsMode: istio}}}
{{- end}}
{{- end}}
{{- with .GlobalLimit}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: rls
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: rls
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: "{{$.RLSHost}}", port_value: {{$.RLSPort}}}}}
{{- end}}
`))

// render returns the bootstrap YAML.
func (c bootstrapConfig) render() ([]byte, error) {
	lh, lp, err := splitPort(c.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address: %w", err)
	}
	uh, up, err := splitPort(c.Upstream)
	if err != nil {
		return nil, fmt.Errorf("upstream address: %w", err)
	}
	if c.Codec == "" || c.Service == "" {
		return nil, errors.New("codec and service are required")
	}
	if c.AccessLog != "" && !(c.AccessLogPercent > 0 && c.AccessLogPercent <= 100) {
		return nil, fmt.Errorf("access log percent %v: want (0, 100]", c.AccessLogPercent)
	}
	if c.MirrorPercent < 0 || c.MirrorPercent > 100 {
		return nil, fmt.Errorf("mirror percent %d: want [0, 100]", c.MirrorPercent)
	}
	clusters := []string{"server"}
	if c.MirrorPercent > 0 {
		clusters = append(clusters, "mirror")
	}
	// Names go into the YAML as they are: refuse anything YAML would read
	// differently.
	for _, name := range []string{c.Codec, c.Service, c.DefaultService, c.AccessLog, strings.TrimPrefix(c.MTLSUpstream, "spiffe://")} {
		if strings.ContainsAny(name, "\"\\\n:{}[]#, ") {
			return nil, fmt.Errorf("%q is not a name", name)
		}
	}
	var rh string
	var rp int
	if g := c.GlobalLimit; g != nil {
		if rh, rp, err = splitPort(g.Service); err != nil {
			return nil, fmt.Errorf("rate-limit service address: %w", err)
		}
		if strings.ContainsAny(g.Match, "\"\\\n") {
			return nil, fmt.Errorf("%q is not a method name", g.Match)
		}
	}
	var buf bytes.Buffer
	err = bootstrapTmpl.Execute(&buf, map[string]any{
		"ListenHost": lh, "ListenPort": lp, "Codec": c.Codec, "Service": c.Service,
		"DefaultService": c.DefaultService, "UpstreamHost": uh, "UpstreamPort": up,
		"AccessLog": c.AccessLog, "AccessLogPercent": c.AccessLogPercent,
		"MirrorPercent": c.MirrorPercent, "Clusters": clusters,
		"MTLSListener": c.MTLSListener, "MTLSUpstream": c.MTLSUpstream,
		"GlobalLimit": c.GlobalLimit, "RLSHost": rh, "RLSPort": rp,
	})
	return buf.Bytes(), err
}

// write renders the bootstrap into the file name in dir and returns its
// path.
func (c bootstrapConfig) write(dir, name string) (string, error) {
	data, err := c.render()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, data, 0o600)
}

// splitPort splits host:port and checks the port is a number.
func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: bad port", addr)
	}
	return host, port, nil
}
