package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// bootstrapConfig is what the proxy's bootstrap file needs: where the
// proxy listens, the Dubbo interface it routes, and the server behind it.
type bootstrapConfig struct {
	Listen    string // host:port of the proxy listener
	Interface string // Dubbo interface: the virtual host's domain
	Upstream  string // host:port of the greeter-server
}

// bootstrapTmpl is a `metamesh proxy --bootstrap` file: one listener with
// the meta-protocol filter (dubbo codec), one route config sending the
// interface to one STATIC cluster of one endpoint.
var bootstrapTmpl = template.Must(template.New("bootstrap").Parse(`# Written by metamesh-bench.
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: dubbo
  address: {socket_address: {address: "{{.ListenHost}}", port_value: {{.ListenPort}}}}
  filter_chains:
  - filters:
    - name: metamesh.meta_protocol_proxy
      typed_config:
        "@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy
        stat_prefix: bench
        codec: dubbo
        route_config_name: dubbo
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: dubbo
  virtual_hosts:
  - name: greeter
    domains: ["{{.Interface}}"]
    routes:
    - name: all
      match: {prefix: ""}
      route: {cluster: greeter}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: greeter
  type: STATIC
  connect_timeout: 1s
  lb_policy: ROUND_ROBIN
  load_assignment:
    cluster_name: greeter
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: "{{.UpstreamHost}}", port_value: {{.UpstreamPort}}}}}
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
	if c.Interface == "" || strings.ContainsAny(c.Interface, "\"\\\n") {
		return nil, fmt.Errorf("interface: %q is not a Dubbo interface name", c.Interface)
	}
	var buf bytes.Buffer
	err = bootstrapTmpl.Execute(&buf, map[string]any{
		"ListenHost": lh, "ListenPort": lp, "Interface": c.Interface,
		"UpstreamHost": uh, "UpstreamPort": up,
	})
	return buf.Bytes(), err
}

// write renders the bootstrap into dir and returns the file's path.
func (c bootstrapConfig) write(dir string) (string, error) {
	data, err := c.render()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "bootstrap.yaml")
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
