package xds_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/xdsclient"
)

// services is n Dubbo services on port 20880, each with subsets v0..v3
// over 4 endpoints and a MetaRouter of 5 routes; every route's second
// destination is subset `canary`, so changing it changes routes only.
func services(n int, canary string) *translate.Input {
	return serviceRange(0, n, func(int) string { return canary })
}

// serviceRange is services from..to-1 of services, service i's canary
// subset canary(i).
func serviceRange(from, to int, canaryOf func(int) string) *translate.Input {
	in := &translate.Input{}
	w := func(v int32) *int32 { return &v }
	for i := from; i < to; i++ {
		canary := canaryOf(i)
		host := v1alpha1.Host(fmt.Sprintf("com.example.Service%04d", i))
		meta := metav1.ObjectMeta{Name: fmt.Sprintf("s%04d", i), Namespace: "default"}
		se := &v1alpha1.ServiceEntry{ObjectMeta: meta, Spec: v1alpha1.ServiceEntrySpec{
			Hosts: []v1alpha1.Host{host},
			Ports: []v1alpha1.ServicePort{{Number: 20880, Name: "dubbo", Protocol: "dubbo"}},
		}}
		dp := &v1alpha1.DestinationPolicy{ObjectMeta: meta, Spec: v1alpha1.DestinationPolicySpec{Host: host}}
		mr := &v1alpha1.MetaRouter{ObjectMeta: meta, Spec: v1alpha1.MetaRouterSpec{Hosts: []v1alpha1.Host{host}}}
		for s := range 4 {
			v := fmt.Sprintf("v%d", s)
			se.Spec.Endpoints = append(se.Spec.Endpoints, v1alpha1.Endpoint{Address: fmt.Sprintf("10.%d.%d.%d", i/250, i%250, s), Labels: map[string]string{"version": v}})
			dp.Spec.Subsets = append(dp.Spec.Subsets, v1alpha1.Subset{Name: v1alpha1.Name(v), Labels: map[string]string{"version": v}})
		}
		for r := range 5 {
			prefix := fmt.Sprintf("m%d", r)
			mr.Spec.Routes = append(mr.Spec.Routes, v1alpha1.MetaRoute{
				Name:  fmt.Sprintf("r%d", r),
				Match: &v1alpha1.Match{Attributes: map[string]v1alpha1.StringMatch{"method": {Prefix: &prefix}}},
				Route: []v1alpha1.WeightedDestination{
					{Destination: v1alpha1.Destination{Host: host, Subset: "v0"}, Weight: w(80)},
					{Destination: v1alpha1.Destination{Host: host, Subset: v1alpha1.Name(canary)}, Weight: w(20)},
				},
			})
		}
		in.ServiceEntries = append(in.ServiceEntries, se)
		in.DestinationPolicies = append(in.DestinationPolicies, dp)
		in.MetaRouters = append(in.MetaRouters, mr)
	}
	return in
}

// resourcesFor translates services(n, canary).
func resourcesFor(n int, canary string) *xdsapi.Resources {
	return translate.Translate(services(n, canary), translate.Options{}).Resources
}

// startServer serves ADS on a free 127.0.0.1 port until the test ends.
func startServer(t testing.TB, o xds.Options, tlsCfg *tls.Config) (*xds.Server, string) {
	t.Helper()
	srv, addr, stop := startStoppable(t, o, tlsCfg)
	t.Cleanup(stop)
	return srv, addr
}

// startStoppable serves ADS on a free 127.0.0.1 port until stop is called.
func startStoppable(t testing.TB, o xds.Options, tlsCfg *tls.Config) (srv *xds.Server, addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if o.Log == nil {
		o.Log = zaptest.NewLogger(t)
	}
	srv = xds.New(o)
	started := make(chan error, 1)
	go func() { started <- srv.Run(ctx) }()
	// WaitForHandlers: Stop returns once every stream handler has, so none
	// logs to t after the test is over.
	g := grpc.NewServer(append(xds.GRPCOptions(tlsCfg), grpc.WaitForHandlers(true))...)
	srv.Register(g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	return srv, ln.Addr().String(), func() {
		cancel()
		g.Stop()
		if err := <-started; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// applier stands in for a proxy: it records each set applied and refuses
// the sets refuse returns an error for.
type applier struct {
	mu     sync.Mutex
	sets   []*xdsapi.Resources
	refuse func(*xdsapi.Resources) error
}

func (a *applier) Apply(res *xdsapi.Resources) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refuse != nil {
		if err := a.refuse(res); err != nil {
			return err
		}
	}
	a.sets = append(a.sets, res)
	return nil
}

func (a *applier) last() *xdsapi.Resources {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sets) == 0 {
		return nil
	}
	return a.sets[len(a.sets)-1]
}

func (a *applier) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.sets)
}

// startClient runs a proxy/xdsclient client for node until the test ends.
func startClient(t testing.TB, addr, node string, a *applier, tlsCfg *tls.Config) *xdsclient.Client {
	t.Helper()
	c, err := xdsclient.New(xdsclient.Config{Address: addr, NodeID: node, Cluster: "test", TLS: tlsCfg, Apply: a.Apply, Log: zaptest.NewLogger(t),
		Backoff: xdsclient.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metric sums the samples of a metric family whose labels include want.
func metric(t testing.TB, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// proxy returns the status of node, or nil.
func proxy(srv *xds.Server, node string) *xds.ProxyStatus {
	for _, p := range srv.Proxies() {
		if p.Node == node {
			return &p
		}
	}
	return nil
}

// ackedAll reports whether node has ACKed the server's versions of every
// type.
func ackedAll(srv *xds.Server, node string) bool {
	p, want := proxy(srv, node), srv.Versions()
	if p == nil || want == nil {
		return false
	}
	for typ, v := range want {
		if p.Acked[typ] != v {
			return false
		}
	}
	return true
}
