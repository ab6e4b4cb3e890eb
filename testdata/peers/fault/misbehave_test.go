package fault

import (
	"bytes"
	"context"
	"net"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/testdata/peers/harness"
)

// mode is how a misbehaving upstream answers each request.
type mode int32

const (
	modeOK        mode = iota // its own reply
	modeSilent                // accepts and reads, never answers
	modeGarbage               // answers bytes that are no frame of the protocol
	modeHalf                  // writes half of the reply, then closes
	modeUnknownID             // a reply with an ID the proxy never issued, then the right one (multiplexed)
	modeExtra                 // the right reply and one more nobody asked for (pipelined)
)

var modeNames = [...]string{"ok", "never answers", "answers garbage", "closes half-way through a reply", "unknown request IDs", "extra replies"}

func (m mode) String() string { return modeNames[m] }

// garbage is what a server speaking another protocol sends: no frame of
// Dubbo (magic), Thrift (a 1.2 GB frame length) or Redis (no RESP type).
var garbage = []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

// faultServer is an upstream that speaks just enough of a protocol to
// misbehave in the current mode. Its codec part decodes requests (with
// the project's codec) and builds the replies; faultServer does the rest.
type faultServer struct {
	ln       net.Listener
	mode     atomic.Int32
	decode   func([]byte, *protocols.Message) (int, error)
	replies  func(m *protocols.Message) (reply, unknownID, extra []byte)
	requests atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// startFaultServer listens on a free loopback port until the test ends.
// decode splits requests; replies builds, for a request, its own reply,
// the same reply under an ID never issued, and an extra reply.
func startFaultServer(t testing.TB, decode func([]byte, *protocols.Message) (int, error),
	replies func(*protocols.Message) (reply, unknownID, extra []byte)) *faultServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &faultServer{ln: ln, decode: decode, replies: replies, conns: map[net.Conn]bool{}}
	fs.wg.Add(1)
	go func() {
		defer fs.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			fs.mu.Lock()
			fs.conns[nc] = true
			fs.mu.Unlock()
			fs.wg.Add(1)
			go func() {
				defer fs.wg.Done()
				fs.serve(nc)
				fs.mu.Lock()
				delete(fs.conns, nc)
				fs.mu.Unlock()
				_ = nc.Close()
			}()
		}
	}()
	t.Cleanup(fs.stop)
	return fs
}

func (fs *faultServer) addr() string { return fs.ln.Addr().String() }

func (fs *faultServer) set(m mode) { fs.mode.Store(int32(m)) }

// dropConns closes every connection the server holds (the proxy sees its
// upstream connections end), keeping the listener.
func (fs *faultServer) dropConns() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for nc := range fs.conns {
		_ = nc.Close()
	}
}

func (fs *faultServer) stop() {
	_ = fs.ln.Close()
	fs.dropConns()
	fs.wg.Wait()
}

// serve answers the requests on nc in the current mode until nc ends or
// the mode ends it.
func (fs *faultServer) serve(nc net.Conn) {
	buf := make([]byte, 0, 64<<10)
	tmp := make([]byte, 32<<10)
	var m protocols.Message
	for {
		n, err := nc.Read(tmp)
		if err != nil {
			return
		}
		buf = append(buf, tmp[:n]...)
		start := 0
		for {
			k, err := fs.decode(buf[start:], &m)
			if err != nil {
				return
			}
			if k == 0 {
				break
			}
			start += k
			if !m.Kind.IsRequest() && m.Kind != protocols.KindHeartbeat {
				continue
			}
			if m.Kind == protocols.KindOneway {
				continue
			}
			fs.requests.Add(1)
			if !fs.answer(nc, &m) {
				return
			}
		}
		buf = append(buf[:0], buf[start:]...)
	}
}

// answer writes what the mode says for m and reports whether to go on.
func (fs *faultServer) answer(nc net.Conn, m *protocols.Message) bool {
	reply, unknown, extra := fs.replies(m)
	var err error
	switch mode(fs.mode.Load()) {
	case modeOK:
		_, err = nc.Write(reply)
	case modeSilent:
	case modeGarbage:
		_, err = nc.Write(garbage)
	case modeHalf:
		_, _ = nc.Write(reply[:len(reply)/2])
		return false
	case modeUnknownID:
		_, err = nc.Write(append(unknown, reply...)) // one write: the proxy reads both at once
	case modeExtra:
		_, err = nc.Write(append(reply, extra...))
	}
	return err == nil
}

// config is a proxy config in flow YAML: one listener, its virtual hosts
// and routes, and static clusters.
type config struct {
	Codec, CodecConfig, DefaultService string
	Listen                             string
	Hosts                              []vhost
	Clusters                           map[string]string // name → address
}

type vhost struct {
	Name    string
	Domains string // flow YAML list
	Routes  []route
}

// route matches one attribute (exactly, or by prefix) or everything.
type route struct {
	Name, Attr, Exact, Prefix, Cluster, Timeout string
}

var configTmpl = template.Must(template.New("").Funcs(template.FuncMap{"port": port}).Parse(`
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: {{.Codec}}
  address: {socket_address: {address: 127.0.0.1, port_value: {{port .Listen}}}}
  filter_chains:
  - filters:
    - name: metamesh.meta_protocol_proxy
      typed_config:
        "@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy
        codec: {{.Codec}}
        {{- if .CodecConfig}}
        codec_config: {{.CodecConfig}}
        {{- end}}
        route_config_name: {{.Codec}}
        {{- if .DefaultService}}
        default_service: {{.DefaultService}}
        {{- end}}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: {{.Codec}}
  virtual_hosts:
  {{- range .Hosts}}
  - name: {{.Name}}
    domains: {{.Domains}}
    routes:
    {{- range .Routes}}
    - name: {{.Name}}
      {{- if .Exact}}
      match: {prefix: "", headers: [{name: {{.Attr}}, string_match: {exact: "{{.Exact}}"}}]}
      {{- else if .Prefix}}
      match: {prefix: "", headers: [{name: {{.Attr}}, string_match: {prefix: "{{.Prefix}}"}}]}
      {{- else}}
      match: {prefix: ""}
      {{- end}}
      route: {cluster: {{.Cluster}}{{if .Timeout}}, timeout: {{.Timeout}}{{end}}}
    {{- end}}
  {{- end}}
{{- range $name, $addr := .Clusters}}
- "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
  name: {{$name}}
  type: STATIC
  connect_timeout: 1s
  load_assignment:
    cluster_name: {{$name}}
    endpoints:
    - lb_endpoints:
      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: {{port $addr}}}}}
{{- end}}
`))

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func (c config) resources(t testing.TB) *xdsapi.Resources {
	t.Helper()
	var buf bytes.Buffer
	if err := configTmpl.Execute(&buf, c); err != nil {
		t.Fatal(err)
	}
	res, err := xdsapi.Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("config: %v\n%s", err, buf.String())
	}
	return res
}

// startProxy runs a proxy in this process (so -race covers it) on c, with
// a free listen address if c has none.
func startProxy(t testing.TB, c *config) *proxy.Server {
	t.Helper()
	return startProxyWith(t, &c.Listen, func(t testing.TB) *xdsapi.Resources { return c.resources(t) })
}

// startProxyWith sets *listen to a free address if empty and runs a proxy
// on the resources the config then makes.
func startProxyWith(t testing.TB, listen *string, resources func(testing.TB) *xdsapi.Resources) *proxy.Server {
	t.Helper()
	if *listen == "" {
		*listen = harness.FreeAddr(t)
	}
	srv := proxy.New(zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel)), metrics.NewProxy())
	// The proxy's goroutines (its listeners', and those they start) carry
	// the test's label, so measure counts this proxy's alone while other
	// tests run in parallel.
	var err error
	pprof.Do(context.Background(), pprof.Labels(proxyLabel, t.Name()), func(context.Context) { err = srv.Apply(resources(t)) })
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}
