package proxy

import (
	"net"
	"runtime"
	"strconv"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols/dubbo"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// seriesCount is the number of metamesh series the proxy exports.
func seriesCount(t *testing.T, srv *Server) int {
	t.Helper()
	mfs, err := srv.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if len(mf.GetName()) > 9 && mf.GetName()[:9] == "metamesh_" {
			n += len(mf.GetMetric())
		}
	}
	return n
}

func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// 2,000 endpoint changes, each to a new host address that gets a
// connection and a request: the series of the hosts that left are
// deleted, so the registry stays the size of one config. Each change
// holds two ports in TIME_WAIT for a minute (the host's and the proxy's
// dial): 10,000 changes took 20,000 of the machine's 28,000 ephemeral
// ports and made other tests' listens fail; a leak of even one series
// per gone host still shows as 1,900 extra series at 2,000.
func TestEndpointChurnKeepsSeriesBounded(t *testing.T) {
	const changes, warmup = 2000, 100
	m := metrics.NewProxy()
	m.RetireAfter = 0 // delete as soon as a host is gone and closed
	srv := New(zap.NewNop(), m)
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	listen := freeAddr(t)
	base := setup{Listen: listen, V1: []string{listen}, V2: []string{listen}}.resources(t)
	codec, _ := dubbo.New(nil)
	var used [65536]bool
	used[mustPort(t, listen)] = true // free until the first Apply binds it
	var c *client
	var baseSeries int
	var baseHeap uint64
	for i := range changes {
		ln := newHostListener(t, &used)
		u := &echoUpstream{name: "v1", ln: ln, codec: codec}
		go u.serve()
		if err := srv.Apply(withHost(base, u.addr())); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if c == nil {
			c = dial(t, listen)
		}
		if status, _ := c.call(uint64(i+1), svc, "m"); status != 20 {
			t.Fatalf("change %d: status %d", i, status)
		}
		u.close()
		if i == warmup {
			baseSeries, baseHeap = seriesCount(t, srv), liveHeap()
		}
	}
	series, heap := seriesCount(t, srv), liveHeap()
	t.Logf("after %d changes: %d metamesh series, live heap %d KiB; after %d: %d series, %d KiB",
		warmup, baseSeries, baseHeap>>10, changes, series, heap>>10)
	if series > baseSeries+2 {
		t.Fatalf("%d series after %d endpoint changes, %d after %d: series of gone hosts are kept", series, changes, baseSeries, warmup)
	}
}

// withHost is res with every cluster's endpoints replaced by addr (new
// messages: a builder reuses what it built from a message it has seen).
func withHost(res *xdsapi.Resources, addr string) *xdsapi.Resources {
	port, _ := strconv.Atoi(portOf(addr))
	out := *res
	out.Clusters = make([]*clusterv3.Cluster, len(res.Clusters))
	for i, c := range res.Clusters {
		c = proto.Clone(c).(*clusterv3.Cluster)
		for _, lle := range c.GetLoadAssignment().GetEndpoints() {
			for _, e := range lle.GetLbEndpoints() {
				e.GetEndpoint().GetAddress().GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: uint32(port)}
			}
		}
		out.Clusters[i] = c
	}
	return &out
}

// newHostListener listens on a port of 127.0.0.1 no earlier call
// returned, so every change names a new host address. Ports already used
// stay bound until a new one is found: when the machine's ephemeral
// ports are scarce the kernel hands a just-closed port out again.
func newHostListener(t *testing.T, used *[65536]bool) net.Listener {
	t.Helper()
	var rejected []net.Listener
	defer func() {
		for _, ln := range rejected {
			_ = ln.Close()
		}
	}()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if port := mustPort(t, ln.Addr().String()); !used[port] {
			used[port] = true
			return ln
		}
		rejected = append(rejected, ln)
	}
	t.Fatal("no new port in 100 tries")
	return nil
}

func mustPort(t *testing.T, addr string) int {
	t.Helper()
	port, err := strconv.Atoi(portOf(addr))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// A cluster that leaves the config takes its request series with it;
// the other clusters keep theirs.
func TestGoneClusterSeriesDeleted(t *testing.T) {
	up := startEcho(t, "v")
	m := metrics.NewProxy()
	m.RetireAfter = 0
	srv := New(zap.NewNop(), m)
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	res := setup{Listen: freeAddr(t), V1: []string{up.addr()}, V2: []string{up.addr()}}.resources(t)
	if err := srv.Apply(res); err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv.ListenerAddr("dubbo"))
	c.call(1, svc, "m")
	c.call(2, svc, "m", header("batchjob", "true"))
	v1 := `metamesh_requests_total{cluster="v1",protocol="dubbo",route="default",service="` + svc + `",status="ok"}`
	v2 := `metamesh_requests_total{cluster="v2",protocol="dubbo",route="batchjob",service="` + svc + `",status="ok"}`
	if scrape(t, srv, v1) != 1 || scrape(t, srv, v2) != 1 {
		t.Fatalf("before: %s = %v, %s = %v; want 1 each", v1, scrape(t, srv, v1), v2, scrape(t, srv, v2))
	}
	without := *res
	without.Clusters = nil
	for _, cl := range res.Clusters {
		if cl.GetName() != "v2" {
			without.Clusters = append(without.Clusters, cl)
		}
	}
	if err := srv.Apply(&without); err != nil {
		t.Fatal(err)
	}
	if got := scrape(t, srv, v2); got != -1 {
		t.Errorf("%s = %v after v2 left the config, want the series deleted", v2, got)
	}
	if got := scrape(t, srv, v1); got != 1 {
		t.Errorf("%s = %v, want it kept at 1", v1, got)
	}
}
