package kube

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// createService creates a Service on port speaking appProtocol, with an EndpointSlice
// holding one ready endpoint per pod (podAddress, target port port+1) and
// the pods themselves, labelled version=<their version>, running as the
// service account <name>-<version>.
func createService(t *testing.T, c client.Client, ns, name string, port int32, appProtocol string, versions ...string) {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "api", Port: port, AppProtocol: ptr.To(appProtocol)}}},
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("api"), Port: ptr.To(port + 1)}},
	}
	objs := []client.Object{svc}
	for i, v := range versions {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%s", name, v), Labels: map[string]string{"version": v}},
			Spec: corev1.PodSpec{ServiceAccountName: fmt.Sprintf("%s-%s", name, v),
				Containers: []corev1.Container{{Name: "app", Image: "example/app"}}},
		}
		objs = append(objs, pod)
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{podAddress(port, i)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name},
		})
	}
	for _, o := range append(objs, slice) {
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("create %s: %v", o.GetName(), err)
		}
	}
}

// podAddress is the address of a Service's i-th pod: 10.<port>.<i+1>.
func podAddress(port int32, i int) string {
	return fmt.Sprintf("10.%d.%d.%d", port>>8, port&0xff, i+1)
}

// TestServiceSubsetsFollowPods: a Service with an EndpointSlice becomes a
// cluster with the pods' addresses, a DestinationPolicy subset selects
// pods by their labels, and a pod relabelled moves between subsets.
func TestServiceSubsetsFollowPods(t *testing.T) {
	cfg, c := apiServer(t)
	ctx := context.Background()
	ns := namespace(t, c, "subsets")
	createService(t, c, ns, "greeter", 20880, "dubbo", "v1", "v2")
	host := "greeter." + ns + ".svc.cluster.local"
	dp := &v1alpha1.DestinationPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "greeter"},
		Spec:       v1alpha1.DestinationPolicySpec{Host: v1alpha1.Host(host), Subsets: []v1alpha1.Subset{{Name: "v2", Labels: map[string]string{"version": "v2"}}}},
	}
	if err := c.Create(ctx, dp); err != nil {
		t.Fatal(err)
	}
	src := startSource(t, cfg, Options{})

	all, v2 := translate.ClusterName(20880, "", host), translate.ClusterName(20880, "v2", host)
	wantEndpoints := func(cluster string, want ...string) {
		t.Helper()
		eventually(t, cluster+" endpoints", func() (bool, string) {
			got := endpointsOf(src.output(), cluster)
			slices.Sort(got)
			return reflect.DeepEqual(got, want), fmt.Sprintf("got %v, want %v", got, want)
		})
	}
	v1Pod, v2Pod := podAddress(20880, 0)+":20881", podAddress(20880, 1)+":20881"
	wantEndpoints(all, v1Pod, v2Pod)
	wantEndpoints(v2, v2Pod)

	var pod corev1.Pod
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "greeter-v1"}, &pod); err != nil {
		t.Fatal(err)
	}
	pod.Labels["version"] = "v2"
	if err := c.Update(ctx, &pod); err != nil {
		t.Fatal(err)
	}
	wantEndpoints(v2, v1Pod, v2Pod)

	var slice discoveryv1.EndpointSlice
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "greeter-1"}, &slice); err != nil {
		t.Fatal(err)
	}
	slice.Endpoints[0].Conditions.Ready = ptr.To(false)
	if err := c.Update(ctx, &slice); err != nil {
		t.Fatal(err)
	}
	wantEndpoints(all, v2Pod)
}

// TestBurstIsOnePublish: many changes within the debounce window are
// published together, not one by one.
func TestBurstIsOnePublish(t *testing.T) {
	cfg, c := apiServer(t)
	ctx := context.Background()
	ns := namespace(t, c, "burst")
	// A debounce far longer than a create takes, even on a loaded machine.
	src := startSource(t, cfg, Options{Debounce: time.Second, MaxDelay: 10 * time.Second})
	eventually(t, "the first publish", func() (bool, string) { return src.publishes.Load() > 0, "none yet" })
	before := src.publishes.Load()

	const n = 20
	for i := range n {
		se := &v1alpha1.ServiceEntry{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("burst-%d", i)},
			Spec: v1alpha1.ServiceEntrySpec{
				Hosts: []v1alpha1.Host{v1alpha1.Host(fmt.Sprintf("burst-%d.example", i))},
				Ports: []v1alpha1.ServicePort{{Number: 21000, Name: "dubbo", Protocol: "dubbo"}},
			},
		}
		if err := c.Create(ctx, se); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all ServiceEntries published", func() (bool, string) {
		got := 0
		for _, se := range src.latest.Load().ServiceEntries {
			if se.Namespace == ns {
				got++
			}
		}
		return got == n, fmt.Sprintf("%d of %d", got, n)
	})
	if got := src.publishes.Load() - before; got > 2 {
		t.Errorf("%d publishes for %d changes made in a burst: want 1 (2 if the burst straddled a rebuild)", got, n)
	}
}

// TestNamespacesLimitTheWatch: with Options.Namespaces, a Service in a
// namespace not listed is not in the input, before or after the start,
// while one in a listed namespace is.
func TestNamespacesLimitTheWatch(t *testing.T) {
	cfg, c := apiServer(t)
	watched, other := namespace(t, c, "watched"), namespace(t, c, "other")
	createService(t, c, other, "before", 20880, "dubbo", "v1")
	createService(t, c, watched, "greeter", 20880, "dubbo", "v1")
	src := startSource(t, cfg, Options{Namespaces: []string{watched}})

	in := func(ns, name string, port int32) string {
		return translate.ClusterName(port, "", name+"."+ns+".svc.cluster.local")
	}
	eventually(t, "the watched namespace's Service", func() (bool, string) {
		got := endpointsOf(src.output(), in(watched, "greeter", 20880))
		return len(got) == 1, fmt.Sprintf("endpoints %v", got)
	})
	createService(t, c, other, "after", 20881, "dubbo", "v1")
	createService(t, c, watched, "later", 20882, "dubbo", "v1")
	eventually(t, "a Service created later in the watched namespace", func() (bool, string) {
		got := endpointsOf(src.output(), in(watched, "later", 20882))
		return len(got) == 1, fmt.Sprintf("endpoints %v", got)
	})
	for _, name := range []string{"before", "after"} {
		for _, cl := range src.output().Resources.Clusters {
			if strings.Contains(cl.GetName(), name+"."+other) {
				t.Errorf("cluster %s of a namespace not watched is in the input", cl.GetName())
			}
		}
	}
}

// TestNamespacesMustBeNames: an empty name (controller-runtime's "every
// namespace") or one with a space is refused rather than quietly lifting
// or breaking the limit.
func TestNamespacesMustBeNames(t *testing.T) {
	for _, tc := range []struct {
		namespaces []string
		ok         bool
	}{
		{[]string{"team-a", "team-b"}, true},
		{[]string{"team-a", ""}, false},
		{[]string{" team-b"}, false},
		{[]string{"Team"}, false},
	} {
		o := Options{Namespaces: tc.namespaces}
		if err := o.complete(); (err == nil) != tc.ok {
			t.Errorf("Namespaces %q: complete() = %v, want ok %v", tc.namespaces, err, tc.ok)
		}
	}
}
