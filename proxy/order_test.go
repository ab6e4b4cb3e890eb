package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// lineCodec is a pipelined toy protocol: a frame is one line; a request is
// "<key> <payload>" and routes on attribute "key"; replies pair by order.
type lineCodec struct{}

func (lineCodec) Model() protocols.Model { return protocols.Pipelined }

func (lineCodec) decode(buf []byte, m *protocols.Message, kind protocols.Kind) (int, error) {
	m.Reset()
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return 0, nil
	}
	m.Kind, m.Raw = kind, buf[:i+1]
	if kind == protocols.KindRequest {
		key, _, _ := strings.Cut(string(buf[:i]), " ")
		m.Headers.Add("key", key)
	}
	return i + 1, nil
}

func (c lineCodec) Decode(buf []byte, m *protocols.Message) (int, error) {
	return c.decode(buf, m, protocols.KindRequest)
}

func (c lineCodec) DecodeResponse(buf []byte, m *protocols.Message) (int, error) {
	return c.decode(buf, m, protocols.KindResponse)
}

func (lineCodec) Encode(dst []byte, m *protocols.Message, _ uint64, _ []protocols.Header) ([]byte, error) {
	return append(dst, m.Raw...), nil
}

func (lineCodec) ErrorReply(dst []byte, _ *protocols.Message, r protocols.Reason, _ string) []byte {
	return fmt.Appendf(dst, "ERR %s\n", r)
}

func (lineCodec) HeartbeatReply(dst []byte, _ *protocols.Message) []byte { return dst }

func init() {
	protocols.MustRegister("test-line", func([]byte) (protocols.Codec, error) { return lineCodec{}, nil })
}

// lineServer answers each line with "<name>:<line>" after delay, except
// those whose payload is "hang", which it never answers.
func lineServer(t *testing.T, name string, delay time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				sc := bufio.NewScanner(nc)
				for sc.Scan() {
					if strings.HasSuffix(sc.Text(), " hang") {
						continue
					}
					time.Sleep(delay)
					fmt.Fprintf(nc, "%s:%s\n", name, sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A client pipelining requests to a slow and a fast upstream gets its
// replies in request order, local replies included.
func TestPipelinedRepliesKeepRequestOrder(t *testing.T) {
	nc := dialLines(t, "test-line")
	reqs := []string{"s1 a", "f1 b", "x1 c", "f2 d", "s2 e", "f3 f"}
	want := []string{"slow:s1 a", "fast:f1 b", "ERR no_route", "fast:f2 d", "slow:s2 e", "fast:f3 f"}
	exchangeLines(t, nc, reqs, want)
}

// exchangeLines sends reqs at once and checks the replies are want, in
// order.
func exchangeLines(t *testing.T, nc net.Conn, reqs, want []string) {
	t.Helper()
	if _, err := fmt.Fprint(nc, strings.Join(reqs, "\n")+"\n"); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	sc := bufio.NewScanner(nc)
	for i, w := range want {
		if !sc.Scan() {
			t.Fatalf("reply %d: %v", i, sc.Err())
		}
		if got := sc.Text(); got != w {
			t.Fatalf("reply %d = %q, want %q (replies must follow request order)", i, got, w)
		}
	}
}

// dialLines starts a slow and a fast line server, a proxy for codec in
// front of them (keys starting with s go to slow, f to fast), and dials it.
func dialLines(t *testing.T, codec string) net.Conn {
	t.Helper()
	_, nc := startLines(t, codec)
	return nc
}

// startLines is dialLines that also returns the proxy.
func startLines(t *testing.T, codec string) (*Server, net.Conn) {
	t.Helper()
	slow, fast := lineServer(t, "slow", 50*time.Millisecond), lineServer(t, "fast", 0)
	listen := freeAddr(t)
	res, err := xdsapi.Parse(fmt.Appendf(nil, `
resources:
- "@type": type.googleapis.com/envoy.config.listener.v3.Listener
  name: lines
  address: {socket_address: {address: 127.0.0.1, port_value: %s}}
  filter_chains:
  - filters:
    - name: metamesh.meta_protocol_proxy
      typed_config: {"@type": type.googleapis.com/metamesh.proxy.v1alpha1.MetaProtocolProxy, codec: %s, route_config_name: lines, default_service: lines}
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: lines
  virtual_hosts:
  - name: lines
    domains: [lines]
    routes:
    - {name: slow, match: {prefix: "", headers: [{name: key, string_match: {prefix: "s"}}]}, route: {cluster: slow}}
    - {name: fast, match: {prefix: "", headers: [{name: key, string_match: {prefix: "f"}}]}, route: {cluster: fast}}
- {"@type": type.googleapis.com/envoy.config.cluster.v3.Cluster, name: slow, type: STATIC, load_assignment: {cluster_name: slow, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]}}
- {"@type": type.googleapis.com/envoy.config.cluster.v3.Cluster, name: fast, type: STATIC, load_assignment: {cluster_name: fast, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %s}}}}]}]}}
`, portOf(listen), codec, portOf(slow), portOf(fast)))
	if err != nil {
		t.Fatal(err)
	}
	srv := New(zaptest.NewLogger(t), metrics.NewProxy())
	if err := srv.Apply(res); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })

	nc, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return srv, nc
}

// sessionLineCodec is lineCodec with a session: "ping" is answered by the
// proxy, "quit" is answered and closes the connection.
type sessionLineCodec struct{ lineCodec }

type lineSession struct{ pings int }

func (sessionLineCodec) NewSession() protocols.Session { return &lineSession{} }

func (s *lineSession) Intercept(dst []byte, m *protocols.Message) ([]byte, protocols.Verdict) {
	switch key, _ := m.Headers.Get("key"); key {
	case "ping":
		s.pings++
		return fmt.Appendf(dst, "PONG %d\n", s.pings), protocols.Answer
	case "quit":
		return append(dst, "BYE\n"...), protocols.Close
	case "f-pin":
		return dst, protocols.Pin
	case "f-unpin":
		return dst, protocols.Unpin
	case "s-once":
		return dst, protocols.Once
	}
	return dst, protocols.Forward
}

func init() {
	protocols.MustRegister("test-line-session", func([]byte) (protocols.Codec, error) { return sessionLineCodec{}, nil })
}

// A session's local replies take their place in the reply order; each
// connection has its own session; quit closes after every reply is out.
func TestSessionAnswersInOrder(t *testing.T) {
	nc := dialLines(t, "test-line-session")
	reqs := []string{"s1 a", "ping", "f1 b", "ping", "s2 c", "quit", "f2 never"}
	want := []string{"slow:s1 a", "PONG 1", "fast:f1 b", "PONG 2", "slow:s2 c", "BYE"}
	exchangeLines(t, nc, reqs, want)
	buf := make([]byte, 64)
	if n, err := nc.Read(buf); err != io.EOF {
		t.Fatalf("after quit: read %q, %v; want the connection closed", buf[:n], err)
	}
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// A client that sends its requests and half-closes still gets the replies.
func TestHalfClosedClientGetsItsReplies(t *testing.T) {
	up := startEcho(t, "v1")
	up.delay.Store(int64(100 * time.Millisecond))
	_, addr := startProxy(t, setup{V1: []string{up.addr()}})
	c := dial(t, addr)
	c.send(dubbo.AppendRequest(nil, dubbo.Request{ID: 9, TwoWay: true, Service: svc, Method: "late"}))
	if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_, id, status, value, err := c.read()
	if err != nil || id != 9 || status != 20 || !strings.HasPrefix(value, "v1|late") {
		t.Fatalf("reply after half-close: id %d status %d %q err %v", id, status, value, err)
	}
}

// splitLineCodec splits a request whose key lists several ("s1,f1 p")
// into one request per key, and merges the replies with "|".
type splitLineCodec struct{ lineCodec }

func (c splitLineCodec) Split(parts []protocols.Message, req *protocols.Message) []protocols.Message {
	keys, payload, _ := strings.Cut(strings.TrimSuffix(string(req.Raw), "\n"), " ")
	if !strings.Contains(keys, ",") {
		return parts
	}
	for _, k := range strings.Split(keys, ",") {
		var m protocols.Message
		if _, err := c.Decode([]byte(k+" "+payload+"\n"), &m); err != nil {
			panic(err)
		}
		parts = append(parts, m)
	}
	return parts
}

func (splitLineCodec) Merge(dst []byte, _ *protocols.Message, replies [][]byte) []byte {
	for i, r := range replies {
		if i > 0 {
			dst = append(dst, '|')
		}
		dst = append(dst, bytes.TrimSuffix(r, []byte("\n"))...)
	}
	return append(dst, '\n')
}

func init() {
	protocols.MustRegister("test-line-split", func([]byte) (protocols.Codec, error) { return splitLineCodec{}, nil })
}

// A pinned client's requests all go on its own connection to the pinning
// request's upstream, whatever they route to, until it unpins.
func TestSessionPinsAConnection(t *testing.T) {
	nc := dialLines(t, "test-line-session")
	reqs := []string{"s1 a", "f-pin b", "s2 c", "ping", "x9 d", "f-unpin e", "s3 f", "s-once g", "f1 h"}
	want := []string{"slow:s1 a", "fast:f-pin b", "fast:s2 c", "PONG 1", "fast:x9 d", "fast:f-unpin e", "slow:s3 f", "slow:s-once g", "fast:f1 h"}
	exchangeLines(t, nc, reqs, want)
}

// A split request's parts go to their own upstreams; the merged reply
// takes the request's place in the reply order, parts without a route
// carry their error.
func TestSplitRequestsMergeInOrder(t *testing.T) {
	nc := dialLines(t, "test-line-split")
	reqs := []string{"s1,f1 a", "f2 b", "f3,x1,s2 c", "s3 d"}
	want := []string{"slow:s1 a|fast:f1 a", "fast:f2 b", "fast:f3 c|ERR no_route|slow:s2 c", "slow:s3 d"}
	exchangeLines(t, nc, reqs, want)
}

// Requests on a connection a session pinned count against their cluster
// like any other: the cluster's requests in flight are back to zero once
// they are answered (they used to end a slot they never took).
func TestPinnedRequestsKeepClusterLoadBalanced(t *testing.T) {
	srv, nc := startLines(t, "test-line-session")
	exchangeLines(t, nc, []string{"f-pin a", "s1 b", "x2 c", "f-unpin d"}, []string{"fast:f-pin a", "fast:s1 b", "fast:x2 c", "fast:f-unpin d"})
	for _, name := range []string{"fast", "slow"} {
		if n := srv.Snapshot().Clusters[name].Load.Active(); n != 0 {
			t.Errorf("cluster %s: %d requests in flight after every reply, want 0", name, n)
		}
	}
}
