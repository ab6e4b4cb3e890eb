package xdsclient_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/translate"
	cpxds "github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
	"github.com/metamesh/metamesh/proxy/xdsclient"

	_ "github.com/metamesh/metamesh/protocols/dubbo"
)

const iface = "org.apache.dubbo.samples.api.GreetingsService"

// config is one Dubbo service on port, routed to subset; with codec set,
// a second service on port+1 speaks a protocol of that codec.
func config(port int, subset, codec string) *xdsapi.Resources {
	return configNamed(port, "v1", "v2", subset, codec)
}

// configNamed is config with the subsets of versions v1 and v2 named s1
// and s2 (their clusters are named after them).
func configNamed(port int, s1, s2, subset, codec string) *xdsapi.Resources {
	host := v1alpha1.Host(iface)
	meta := metav1.ObjectMeta{Name: "greetings", Namespace: "default"}
	in := &translate.Input{
		ServiceEntries: []*v1alpha1.ServiceEntry{{ObjectMeta: meta, Spec: v1alpha1.ServiceEntrySpec{
			Hosts: []v1alpha1.Host{host},
			Ports: []v1alpha1.ServicePort{{Number: v1alpha1.PortNumber(port), Name: "dubbo", Protocol: "dubbo"}},
			Endpoints: []v1alpha1.Endpoint{
				{Address: "127.0.0.1", Labels: map[string]string{"version": "v1"}},
				{Address: "127.0.0.2", Labels: map[string]string{"version": "v2"}},
			},
		}}},
		DestinationPolicies: []*v1alpha1.DestinationPolicy{{ObjectMeta: meta, Spec: v1alpha1.DestinationPolicySpec{
			Host:    host,
			Subsets: []v1alpha1.Subset{{Name: v1alpha1.Name(s1), Labels: map[string]string{"version": "v1"}}, {Name: v1alpha1.Name(s2), Labels: map[string]string{"version": "v2"}}},
		}}},
		MetaRouters: []*v1alpha1.MetaRouter{{ObjectMeta: meta, Spec: v1alpha1.MetaRouterSpec{
			Hosts:  []v1alpha1.Host{host},
			Routes: []v1alpha1.MetaRoute{{Name: "all", Route: []v1alpha1.WeightedDestination{{Destination: v1alpha1.Destination{Host: host, Subset: v1alpha1.Name(subset)}}}}},
		}}},
	}
	if codec != "" {
		in.ApplicationProtocols = []*v1alpha1.ApplicationProtocol{{ObjectMeta: metav1.ObjectMeta{Name: "my-rpc"}, Spec: v1alpha1.ApplicationProtocolSpec{Codec: v1alpha1.Name(codec)}}}
		in.ServiceEntries = append(in.ServiceEntries, &v1alpha1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Name: "my", Namespace: "default"}, Spec: v1alpha1.ServiceEntrySpec{
			Hosts: []v1alpha1.Host{"com.example.My"},
			Ports: []v1alpha1.ServicePort{{Number: v1alpha1.PortNumber(port + 1), Name: "rpc", Protocol: "my-rpc"}},
		}})
	}
	return translate.Translate(in, translate.Options{ListenAddress: "127.0.0.1"}).Resources
}

// controlPlane is an ADS server on addr ("127.0.0.1:0" for any port) that
// the test can stop, as a control plane dying.
type controlPlane struct {
	*cpxds.Server
	addr string
	stop func()
}

func startControlPlane(t *testing.T, addr string, res *xdsapi.Resources) *controlPlane {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := cpxds.New(cpxds.Options{Debounce: time.Millisecond, Log: zaptest.NewLogger(t).Named("cp")})
	ran := make(chan struct{})
	go func() {
		if err := srv.Run(ctx); err != nil {
			t.Errorf("control plane: %v", err)
		}
		close(ran)
	}()
	srv.Update(res)
	// WaitForHandlers: Stop returns once every stream handler has, so none
	// logs to t after the test is over.
	g := grpc.NewServer(append(cpxds.GRPCOptions(nil), grpc.WaitForHandlers(true))...)
	srv.Register(g)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	cp := &controlPlane{Server: srv, addr: ln.Addr().String(), stop: func() { cancel(); g.Stop(); <-ran }}
	t.Cleanup(cp.stop)
	return cp
}

// protocols are the ADS variants every client test runs with.
var protocols = []string{xdsclient.ProtocolDelta, xdsclient.ProtocolSotw}

// startProxy runs a real proxy fed by an ADS client of protocol until the
// test ends.
func startProxy(t *testing.T, addr, protocol string) (*proxy.Server, *xdsclient.Client) {
	t.Helper()
	srv := proxy.New(zaptest.NewLogger(t).Named("proxy"), metrics.NewProxy())
	c, err := xdsclient.New(xdsclient.Config{
		Address: addr, NodeID: "p1", Protocol: protocol, Apply: srv.Apply, Log: zaptest.NewLogger(t).Named("ads"),
		OnResponse: func(typ string, acked bool) {
			srv.Metrics().XDSUpdates.WithLabelValues(typ, map[bool]string{true: "ack", false: "nack"}[acked]).Inc()
		},
		Backoff: xdsclient.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = srv.Shutdown(context.Background())
	})
	return srv, c
}

// holdPort binds a free port and returns it with the function that frees
// it: held while the test opens a listener on port 0 (a control plane),
// which could otherwise be given the same port, then released for the
// proxy's listener.
func holdPort(t *testing.T) (int, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln.Addr().(*net.TCPAddr).Port, func() { _ = ln.Close() }
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// routedTo is the subset the proxy's only route sends to ("" if none).
func routedTo(srv *proxy.Server) string {
	snap := srv.Snapshot()
	if snap == nil {
		return ""
	}
	for _, rc := range snap.Resources.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				parts := strings.Split(r.GetRoute().GetCluster(), "|")
				if len(parts) == 4 {
					return parts[2]
				}
			}
		}
	}
	return ""
}

// A proxy behind the client gets its first config complete, follows
// changes, keeps serving when the control plane dies, and resyncs with a
// new one on the same address.
func TestProxyFollowsSurvivesAndResyncs(t *testing.T) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) { testProxyFollowsSurvivesAndResyncs(t, p) })
	}
}

func testProxyFollowsSurvivesAndResyncs(t *testing.T, protocol string) {
	port, release := holdPort(t)
	cp := startControlPlane(t, "127.0.0.1:0", config(port, "v1", ""))
	release()
	srv, c := startProxy(t, cp.addr, protocol)

	waitFor(t, 5*time.Second, "the first config", srv.Ready)
	if got := routedTo(srv); got != "v1" {
		t.Fatalf("routed to %q, want v1", got)
	}
	listen := srv.ListenerAddr("dubbo-" + strconv.Itoa(port))
	if listen == "" {
		t.Fatal("the listener from the control plane is not bound")
	}
	cp.Update(config(port, "v2", ""))
	waitFor(t, 5*time.Second, "the change to v2", func() bool { return routedTo(srv) == "v2" })
	if c.Versions()["route"] != cp.Versions()["route"] {
		t.Fatalf("client route version %s, control plane %s", c.Versions()["route"], cp.Versions()["route"])
	}

	cp.stop()
	waitFor(t, 5*time.Second, "the client to notice", func() bool { return !c.Connected() })
	time.Sleep(200 * time.Millisecond) // a few failed reconnections
	if !srv.Ready() || routedTo(srv) != "v2" || srv.ListenerAddr("dubbo-"+strconv.Itoa(port)) != listen {
		t.Fatal("the proxy lost its config when the control plane went away")
	}
	nc, err := net.DialTimeout("tcp", listen, time.Second)
	if err != nil {
		t.Fatalf("the listener stopped accepting: %v", err)
	}
	nc.Close()

	startControlPlane(t, cp.addr, config(port, "v1", ""))
	waitFor(t, 5*time.Second, "the resync to v1", func() bool { return routedTo(srv) == "v1" && c.Connected() })
}

// A listener the proxy can't apply (a codec it doesn't have) is NACKed with
// Apply's error; the old listeners stay, the control plane reports the
// NACK, and fixing the config brings ACKs back.
func TestProxyNacksWhatItCannotApply(t *testing.T) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) { testProxyNacksWhatItCannotApply(t, p) })
	}
}

func testProxyNacksWhatItCannotApply(t *testing.T, protocol string) {
	port, release := holdPort(t)
	cp := startControlPlane(t, "127.0.0.1:0", config(port, "v1", ""))
	release()
	srv, c := startProxy(t, cp.addr, protocol)
	waitFor(t, 5*time.Second, "the first config", srv.Ready)
	good := c.Versions()

	cp.Update(config(port, "v1", "no-such-codec"))
	waitFor(t, 5*time.Second, "the NACK at the control plane", func() bool {
		ps := cp.Proxies()
		return len(ps) == 1 && ps[0].LastNack != nil
	})
	nack := cp.Proxies()[0].LastNack
	if nack.Type != "listener" || !strings.Contains(nack.Error, "no-such-codec") {
		t.Fatalf("NACK %+v; want the listener type and the proxy's reason naming the codec", nack)
	}
	if v := c.Versions()["listener"]; v != good["listener"] {
		t.Fatalf("listener version %s in force, want the last good %s", v, good["listener"])
	}
	if len(srv.Snapshot().Listeners) != 1 || srv.ListenerAddr("my-rpc-"+strconv.Itoa(port+1)) != "" {
		t.Fatal("the refused listener is in force")
	}
	m := srv.Metrics().XDSUpdates
	if n := testutil.ToFloat64(m.WithLabelValues("listener", "nack")); n != 1 {
		t.Fatalf("xds_updates_total{listener,nack} = %v, want 1", n)
	}

	cp.Update(config(port, "v2", ""))
	waitFor(t, 5*time.Second, "the fixed config", func() bool { return routedTo(srv) == "v2" && c.Versions()["listener"] == cp.Versions()["listener"] })
}

// A delta proxy resyncing with a fresh control plane of the same config
// (a restart) is sent nothing: it names what it has and that is current.
// The next change is then the only response.
func TestDeltaResyncSendsNothingUnchanged(t *testing.T) {
	port, release := holdPort(t)
	cp := startControlPlane(t, "127.0.0.1:0", config(port, "v1", ""))
	release()
	srv, c := startProxy(t, cp.addr, xdsclient.ProtocolDelta)
	waitFor(t, 5*time.Second, "the first config", srv.Ready)

	cp.stop()
	waitFor(t, 5*time.Second, "the client to notice", func() bool { return !c.Connected() })
	fresh := startControlPlane(t, cp.addr, config(port, "v1", ""))
	waitFor(t, 5*time.Second, "the resync", func() bool { return c.Connected() && len(fresh.Proxies()) == 1 })
	fresh.Update(config(port, "v2", ""))
	waitFor(t, 5*time.Second, "the change to v2", func() bool { return routedTo(srv) == "v2" })
	if n := testutil.ToFloat64(srv.Metrics().XDSUpdates.WithLabelValues("route", "ack")); n != 2 {
		t.Errorf("%v route updates applied, want 2 (the first config, the change)", n)
	}
	var sent float64
	for _, typ := range []string{"cluster", "endpoint", "listener", "route"} {
		sent += testutil.ToFloat64(srv.Metrics().XDSUpdates.WithLabelValues(typ, "ack"))
	}
	if sent != 5 {
		t.Fatalf("%v responses applied, want 5: four at first, none at the resync, one route change", sent)
	}
}
