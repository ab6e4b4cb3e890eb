package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/wire"
)

const svc = "org.apache.dubbo.samples.api.GreetingsService"

// setup describes a one-listener test config: v1 and v2 clusters, a
// batchjob route to v2, and a default route with the given weights.
type setup struct {
	Listen   string
	Service  string
	V1, V2   []string
	W1, W2   int
	MutateTo string
	// Policy is extra RouteAction fields (flow YAML) of the default
	// route, e.g. "timeout: 0.1s"; Thresholds the circuit breaker
	// thresholds (flow YAML) of both clusters.
	Policy, Thresholds string
	// Outlier is the outlier_detection (flow YAML) of both clusters.
	Outlier string
	// RateLimit is the virtual host's LocalRateLimit and Fault the
	// default route's RoutePolicy (flow YAML, without "@type").
	RateLimit, Fault string // Fault: RoutePolicy fields, e.g. fault: {...}
	// Global is the virtual host's GlobalRateLimit (flow YAML, without
	// "@type"), whose rate_limit_service may be the cluster "rls" of
	// the endpoints RLS.
	Global string
	RLS    []string
	// AccessLog is the listener's access_log (flow YAML).
	AccessLog string
	// Authz is the listener's authorization (flow YAML).
	Authz string
	// Wildcard adds "*" to the virtual host's domains: it serves requests
	// naming any service, as a port of one service does.
	Wildcard bool
	// IOMode is the proxy's I/O mode ("": goroutine).
	IOMode IOMode
}

var configTmpl = template.Must(template.New("c").Parse(`
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: dubbo
  address: {socket_address: {address: 127.0.0.1, port_value: {{.Port}}}}
  filter_chains:
  - filters:
    - name: metamesh.meta_protocol_proxy
      typed_config:
        "@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy
        codec: dubbo
        route_config_name: dubbo
        {{- if .AccessLog}}
        access_log: {{.AccessLog}}
        {{- end}}
        {{- if .Authz}}
        authorization: {{.Authz}}
        {{- end}}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: dubbo
  virtual_hosts:
  - name: greetings
    domains: ["{{.Service}}"{{if .Wildcard}}, "*"{{end}}]
    {{- if or .RateLimit .Global}}
    typed_per_filter_config:
      {{- if .RateLimit}}
      metamesh.meta_protocol_proxy: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.LocalRateLimit, {{.RateLimit}}}
      {{- end}}
      {{- if .Global}}
      metamesh.global_rate_limit: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.GlobalRateLimit, {{.Global}}}
      {{- end}}
    {{- end}}
    routes:
    - name: batchjob
      match: {prefix: "", headers: [{name: batchjob, string_match: {exact: "true"}}]}
      route: {cluster: v2}
    - name: default
      match: {prefix: ""}
      {{- if .Fault}}
      typed_per_filter_config:
        metamesh.meta_protocol_proxy: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.RoutePolicy, {{.Fault}}}
      {{- end}}
      {{- if .MutateTo}}
      request_headers_to_add: [{header: {key: x-routed-by, value: "{{.MutateTo}}"}}]
      {{- end}}
      route: {weighted_clusters: {clusters: [{name: v1, weight: {{.W1}}}, {name: v2, weight: {{.W2}}}]}{{if .Policy}}, {{.Policy}}{{end}}}
{{- range $name, $addrs := .Clusters}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: {{$name}}
  type: STATIC
  connect_timeout: 0.5s
  {{- if $.Thresholds}}
  circuit_breakers: {thresholds: [{{$.Thresholds}}]}
  {{- end}}
  {{- if $.Outlier}}
  outlier_detection: {{$.Outlier}}
  {{- end}}
  load_assignment:
    cluster_name: {{$name}}
    endpoints:
    - lb_endpoints:
{{- range $addrs}}
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{.}}}}}
{{- end}}
{{- if not $addrs}} []{{end}}
{{- end}}
`))

func (c setup) resources(t testing.TB) *xdsapi.Resources {
	t.Helper()
	port := func(a string) string {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatalf("address %q: %v", a, err)
		}
		return p
	}
	ports := func(as []string) []string {
		out := []string{}
		for _, a := range as {
			out = append(out, port(a))
		}
		return out
	}
	if c.Service == "" {
		c.Service = svc
	}
	if c.W1+c.W2 == 0 {
		c.W1 = 100
	}
	clusters := map[string][]string{"v1": ports(c.V1), "v2": ports(c.V2)}
	if len(c.RLS) > 0 {
		clusters["rls"] = ports(c.RLS)
	}
	var buf bytes.Buffer
	err := configTmpl.Execute(&buf, map[string]any{
		"Port": port(c.Listen), "Service": c.Service, "W1": c.W1, "W2": c.W2, "MutateTo": c.MutateTo,
		"Policy": c.Policy, "Thresholds": c.Thresholds, "Outlier": c.Outlier, "RateLimit": c.RateLimit, "Fault": c.Fault, "AccessLog": c.AccessLog, "Authz": c.Authz, "Wildcard": c.Wildcard,
		"Global": c.Global, "Clusters": clusters,
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := xdsapi.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("parse test config: %v\n%s", err, buf.String())
	}
	return res
}

// hostOf returns the host addr of cluster name in the config in force.
func hostOf(t testing.TB, srv *Server, name, addr string) *cluster.Host {
	t.Helper()
	if cl := srv.Snapshot().Clusters[name]; cl != nil {
		for _, e := range cl.Endpoints {
			if e.Host.Addr == addr {
				return e.Host
			}
		}
	}
	t.Fatalf("cluster %s has no host %s", name, addr)
	return nil
}

// freeAddr returns an address that was free a moment ago and that no
// earlier call returned (the kernel often hands a just-freed port out
// again: candidates stay bound until one is new).
func freeAddr(t testing.TB) string {
	t.Helper()
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			_ = ln.Close()
		}
	}()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ln)
		if _, taken := handedOut.LoadOrStore(ln.Addr().String(), true); !taken {
			return ln.Addr().String()
		}
	}
	t.Fatal("freeAddr: no address that was not handed out already")
	return ""
}

var handedOut sync.Map

func startProxy(t testing.TB, c setup) (*Server, string) {
	t.Helper()
	if c.Listen == "" {
		c.Listen = freeAddr(t)
	}
	srv := New(zaptest.NewLogger(t), metrics.NewProxy())
	if err := srv.SetIOMode(c.IOMode, wire.LoopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Apply(c.resources(t)); err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	return srv, c.Listen
}

// echoUpstream is a Dubbo upstream made of the codec itself: it answers
// each request with "<name>|<method>|<x-tag attachment>|<x-routed-by>",
// counts heartbeats, and can hold replies for a while.
type echoUpstream struct {
	name       string
	ln         net.Listener
	codec      protocols.Codec
	heartbeats atomic.Int64
	requests   atomic.Int64
	delay      atomic.Int64 // nanoseconds
	status     atomic.Int32 // reply status when set, else 20 (OK)
	last       atomic.Value // map[string]string: the last request's attributes
	mu         sync.Mutex
	conns      []net.Conn
}

func startEcho(t testing.TB, name string) *echoUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startEchoOn(t, name, ln)
}

// startEchoOn starts an echo upstream serving ln.
func startEchoOn(t testing.TB, name string, ln net.Listener) *echoUpstream {
	t.Helper()
	codec, _ := dubbo.New(nil)
	u := &echoUpstream{name: name, ln: ln, codec: codec}
	go u.serve()
	t.Cleanup(u.close)
	return u
}

func (u *echoUpstream) addr() string { return u.ln.Addr().String() }

func (u *echoUpstream) close() {
	_ = u.ln.Close()
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, c := range u.conns {
		_ = c.Close()
	}
}

func (u *echoUpstream) serve() {
	for {
		nc, err := u.ln.Accept()
		if err != nil {
			return
		}
		u.mu.Lock()
		u.conns = append(u.conns, nc)
		u.mu.Unlock()
		go func() {
			w := wire.NewWriter(nc, 0)
			_ = wire.ReadFrames(nc, u.codec, func(m *protocols.Message) error {
				if m.Kind == protocols.KindHeartbeat {
					u.heartbeats.Add(1)
					return w.Append(func(dst []byte) []byte { return u.codec.HeartbeatReply(dst, m) })
				}
				u.requests.Add(1)
				attrs := map[string]string{}
				for _, h := range m.Headers.All() {
					attrs[h.Key] = h.Value
				}
				u.last.Store(attrs)
				method, _ := m.Headers.Get("method")
				tag, _ := m.Headers.Get("x-tag")
				routed, _ := m.Headers.Get("x-routed-by")
				id, value := m.ID, strings.Join([]string{u.name, method, tag, routed}, "|")
				status := byte(20)
				if s := u.status.Load(); s != 0 {
					status = byte(s)
				}
				if d := time.Duration(u.delay.Load()); d > 0 {
					go func() {
						time.Sleep(d)
						_ = w.Append(func(dst []byte) []byte { return dubbo.AppendResponse(dst, id, status, value) })
					}()
					return nil
				}
				return w.Append(func(dst []byte) []byte { return dubbo.AppendResponse(dst, id, status, value) })
			}, nil)
			w.Close()
		}()
	}
}

// client is a raw Dubbo client over one connection.
type client struct {
	t     testing.TB
	nc    net.Conn
	codec protocols.Codec
	buf   []byte
	// events counts the event requests read() skipped (readonly events).
	events int
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	codec, _ := dubbo.New(nil)
	return &client{t: t, nc: nc, codec: codec}
}

func (c *client) send(frame []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(frame); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next frame's kind, ID, status and value.
func (c *client) read() (protocols.Kind, uint64, byte, string, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var m protocols.Message
	for {
		if n, err := c.codec.Decode(c.buf, &m); err != nil {
			return 0, 0, 0, "", err
		} else if n > 0 {
			frame := append([]byte(nil), c.buf[:n]...)
			c.buf = c.buf[n:]
			if m.Kind == protocols.KindHeartbeat {
				c.events++ // the readonly event of a drain
				continue
			}
			if m.Kind == protocols.KindHeartbeatReply {
				return m.Kind, m.ID, byte(m.Status), "", nil
			}
			status, value, err := dubbo.ParseResponseValue(frame)
			return m.Kind, m.ID, status, value, err
		}
		tmp := make([]byte, 4096)
		n, err := c.nc.Read(tmp)
		c.buf = append(c.buf, tmp[:n]...)
		if err != nil && n == 0 {
			return 0, 0, 0, "", err
		}
	}
}

// call sends one request and returns the status and value of its reply.
func (c *client) call(id uint64, service, method string, attachments ...protocols.Header) (byte, string) {
	c.t.Helper()
	c.send(dubbo.AppendRequest(nil, dubbo.Request{ID: id, TwoWay: true, Service: service, Method: method, Args: []string{"x"}, Attachments: attachments}))
	_, gotID, status, value, err := c.read()
	if err != nil {
		c.t.Fatalf("call %d: %v", id, err)
	}
	if gotID != id {
		c.t.Fatalf("call %d: reply carries ID %d", id, gotID)
	}
	return status, value
}

func expectEOF(t testing.TB, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatalf("expected the proxy to close the connection, got %v", err)
	}
}

func header(k, v string) protocols.Header { return protocols.Header{Key: k, Value: v} }

// deadPort is a 127.0.0.1 port that refuses connections until listen:
// a socket bound to it never listens meanwhile, so no other test can take
// the port (as one freed by freeAddr can be taken).
type deadPort struct {
	addr string
	fd   int
}

func reserveDeadPort(t testing.TB) *deadPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		_ = syscall.Close(fd)
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		_ = syscall.Close(fd)
		t.Fatal(err)
	}
	p := &deadPort{addr: fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port), fd: fd}
	t.Cleanup(func() {
		if p.fd >= 0 {
			_ = syscall.Close(p.fd)
		}
	})
	return p
}

// deadAddr returns an address that refuses connections for the whole test.
func deadAddr(t testing.TB) string { return reserveDeadPort(t).addr }

// listen makes the port a listener, on the same socket (no window in
// which another test could take it).
func (p *deadPort) listen(t testing.TB) net.Listener {
	t.Helper()
	if err := syscall.Listen(p.fd, 128); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(p.fd), p.addr)
	p.fd = -1
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
