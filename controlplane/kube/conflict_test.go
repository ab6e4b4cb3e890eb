package kube

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/controlplane/translate"
	aeraki "github.com/metamesh/metamesh/crds/aeraki/v1alpha1"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// TestBuildOldestKeepsKey: of a metamesh and an Aeraki object with one key,
// the older keeps it, whichever kind it is; creation times reach the input.
func TestBuildOldestKeepsKey(t *testing.T) {
	at := func(ns, name string, sec int) metav1.ObjectMeta {
		m := om(ns, name)
		m.CreationTimestamp = metav1.NewTime(time.Date(2024, 1, 1, 0, 0, sec, 0, time.UTC))
		return m
	}
	route := []v1alpha1.WeightedDestination{{Destination: v1alpha1.Destination{Host: "h"}}}
	l := &lists{}
	l.metaRouters.Items = []v1alpha1.MetaRouter{{ObjectMeta: at("a", "same", 2),
		Spec: v1alpha1.MetaRouterSpec{Hosts: []v1alpha1.Host{"h"}, Routes: []v1alpha1.MetaRoute{{Name: "r", Route: route}}}}}
	l.aerakiRouters.Items = []aeraki.MetaRouter{{ObjectMeta: at("a", "same", 1), Spec: aeraki.MetaRouterSpec{Hosts: []string{"h2"}}}}
	l.applicationProtocols.Items = []v1alpha1.ApplicationProtocol{{ObjectMeta: at("", "my-rpc", 2), Spec: v1alpha1.ApplicationProtocolSpec{Codec: "dubbo"}}}
	l.aerakiProtocols.Items = []aeraki.ApplicationProtocol{{ObjectMeta: at("z", "rpc", 1),
		Spec: aeraki.ApplicationProtocolSpec{Protocol: "my-rpc", Codec: "aeraki.meta_protocol.codec.dubbo"}}}
	s := build(l, "cluster.local")

	for _, c := range []struct {
		refused objectID
		origin  string
		holder  objectID
	}{
		{objectID{"MetaRouter.metamesh.io", "a", "same"}, "MetaRouter/a/same", objectID{"MetaRouter.metaprotocol.aeraki.io", "a", "same"}},
		{objectID{"ApplicationProtocol.metamesh.io", "", "my-rpc"}, "ApplicationProtocol//my-rpc", objectID{"ApplicationProtocol.metaprotocol.aeraki.io", "z", "rpc"}},
	} {
		got := s.refused[c.refused].Get(v1alpha1.ConditionAccepted)
		if got == nil || got.Reason != v1alpha1.ReasonConflict || !strings.Contains(got.Message, "already defined by "+c.holder.String()) {
			t.Errorf("%v: Accepted %+v, want Conflict naming %v", c.refused, got, c.holder)
		}
		if o := s.origins[c.origin]; o != c.holder {
			t.Errorf("%s comes from %v, want the older %v", c.origin, o, c.holder)
		}
	}
	if ts := s.input.MetaRouters[0].CreationTimestamp; !ts.Equal(&l.aerakiRouters.Items[0].CreationTimestamp) {
		t.Errorf("creationTimestamp not kept in the input: %v", ts)
	}
}

// TestConflictsOldestWins: objects created later than the ones in force,
// claiming their host, port, host's policy or router, or protocol name,
// get Accepted=False, reason Conflict, naming the older object, and the
// published config keeps following the older one. The newer objects' names
// sort first, so namespace/name order alone would pick them.
func TestConflictsOldestWins(t *testing.T) {
	cfg, c := apiServer(t)
	ns := namespace(t, c, "conflicts")
	createService(t, c, ns, "greeter", 21010, "dubbo", "v1", "v2")
	host := "greeter." + ns + ".svc.cluster.local"
	subsets := []v1alpha1.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}, {Name: "v2", Labels: map[string]string{"version": "v2"}}}
	entry := func(name, host string, port int, proto string) *v1alpha1.ServiceEntry {
		return &v1alpha1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ServiceEntrySpec{
			Hosts:     []v1alpha1.Host{v1alpha1.Host(host)},
			Ports:     []v1alpha1.ServicePort{{Number: v1alpha1.PortNumber(port), Name: "p", Protocol: v1alpha1.Name(proto)}},
			Endpoints: []v1alpha1.Endpoint{{Address: "127.0.0.1"}},
		}}
	}
	policy := func(name string) *v1alpha1.DestinationPolicy {
		return &v1alpha1.DestinationPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.DestinationPolicySpec{Host: v1alpha1.Host(host), Subsets: subsets}}
	}
	older := []client.Object{
		dubboRouter(ns, "greetings", host, "v1"),
		policy("greeter"),
		entry("z-entry", "conflicts.example", 21011, "dubbo"),
		entry("z-thrift", "thrift.conflicts.example", 21012, "thrift"),
		&aeraki.ApplicationProtocol{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "z-rpc"},
			Spec: aeraki.ApplicationProtocolSpec{Protocol: "conflict-rpc", Codec: "aeraki.meta_protocol.codec.dubbo"}},
	}
	newer := []client.Object{
		dubboRouter(ns, "broken", host, "v2"),
		policy("a-policy"),
		entry("a-entry", "conflicts.example", 21013, "dubbo"),
		entry("a-thrift", "thrift2.conflicts.example", 21012, "thrift"),
		&v1alpha1.ApplicationProtocol{ObjectMeta: metav1.ObjectMeta{Name: "conflict-rpc"}, Spec: v1alpha1.ApplicationProtocolSpec{Codec: "dubbo"}},
	}
	createLater(t, c, older, newer)
	src := startSource(t, cfg, Options{})

	for _, o := range older {
		wantCondition(t, c, o, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	}
	for _, w := range []struct {
		obj client.Object
		msg string
	}{
		{newer[0], "spec.hosts[0]: " + host + " is already routed by MetaRouter " + ns + "/greetings"},
		{newer[1], "spec.host: " + host + " already has DestinationPolicy " + ns + "/greeter"},
		{newer[2], "spec.hosts[0]: conflicts.example is already defined by ServiceEntry " + ns + "/z-entry"},
		{newer[3], "spec.ports[0]: port 21012 already carries thrift service thrift.conflicts.example (ServiceEntry " + ns + "/z-thrift)"},
		{newer[4], "ApplicationProtocol conflict-rpc is already defined by ApplicationProtocol.metaprotocol.aeraki.io " + ns + "/z-rpc"},
	} {
		wantCondition(t, c, w.obj, v1alpha1.ConditionAccepted, metav1.ConditionFalse, v1alpha1.ReasonConflict, w.msg)
	}

	// Traffic follows the older router: to subset v1, not v2.
	want := translate.ClusterName(21010, "v1", host)
	eventually(t, "the route of "+host+" to "+want, func() (bool, string) {
		got := routeClusters(src.output(), host)
		return len(got) == 1 && got[0] == want, fmt.Sprintf("clusters %v", got)
	})
}

// createLater creates older, waits until the clock has passed the second
// of their creationTimestamps (which the API server sets to the second),
// then creates newer, and checks that each newer object is younger.
func createLater(t *testing.T, c client.Client, older, newer []client.Object) {
	t.Helper()
	ctx := context.Background()
	var last time.Time
	for _, o := range older {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
		if ts := o.GetCreationTimestamp().Time; ts.After(last) {
			last = ts
		}
	}
	for end := last.Add(time.Second); time.Now().Before(end); {
		time.Sleep(time.Until(end))
	}
	for _, o := range newer {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
		if ts := o.GetCreationTimestamp().Time; !ts.After(last) {
			t.Fatalf("%s created at %v, not after the older objects (%v)", o.GetName(), ts, last)
		}
	}
}

// routeClusters returns the clusters the routes of host's virtual host go
// to, in every route configuration of out.
func routeClusters(out *translate.Output, host string) []string {
	if out == nil {
		return nil
	}
	var clusters []string
	for _, rc := range out.Resources.Routes {
		for _, vh := range rc.VirtualHosts {
			if len(vh.Domains) == 0 || vh.Domains[0] != host {
				continue
			}
			for _, r := range vh.Routes {
				a := r.GetRoute()
				if cl := a.GetCluster(); cl != "" {
					clusters = append(clusters, cl)
				}
				for _, w := range a.GetWeightedClusters().GetClusters() {
					clusters = append(clusters, w.Name)
				}
			}
		}
	}
	return clusters
}

// TestCaptureOnlySharedPort: with Options.Translate.CaptureOnly (the
// control plane of sidecars), two Thrift ServiceEntries on one port at
// addresses of their own are both accepted; the status says so.
func TestCaptureOnlySharedPort(t *testing.T) {
	cfg, c := apiServer(t)
	ns := namespace(t, c, "capture-only")
	entry := func(name, addr string) *v1alpha1.ServiceEntry {
		return &v1alpha1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.ServiceEntrySpec{
			Hosts:     []v1alpha1.Host{v1alpha1.Host(name + ".capture.example")},
			Ports:     []v1alpha1.ServicePort{{Number: 21020, Name: "thrift", Protocol: "thrift"}},
			Endpoints: []v1alpha1.Endpoint{{Address: addr}},
		}}
	}
	older, newer := entry("z-thrift", "198.18.0.1"), entry("a-thrift", "198.18.0.2")
	createLater(t, c, []client.Object{older}, []client.Object{newer})
	startSource(t, cfg, Options{Translate: translate.Options{CaptureOnly: true}})
	for _, o := range []client.Object{older, newer} {
		wantCondition(t, c, o, v1alpha1.ConditionAccepted, metav1.ConditionTrue, v1alpha1.ReasonAccepted, "")
	}
}
