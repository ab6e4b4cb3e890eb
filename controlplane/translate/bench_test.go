package translate

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// scaleInput builds n Dubbo services on one port, each with 4 subsets over
// 4 endpoints and a MetaRouter of 5 routes.
func scaleInput(n int) *Input {
	in := &Input{}
	ptr := func(s string) *string { return &s }
	w := func(v int32) *int32 { return &v }
	for i := range n {
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
			mr.Spec.Routes = append(mr.Spec.Routes, v1alpha1.MetaRoute{
				Name:  fmt.Sprintf("r%d", r),
				Match: &v1alpha1.Match{Attributes: map[string]v1alpha1.StringMatch{"method": {Prefix: ptr(fmt.Sprintf("m%d", r))}}},
				Route: []v1alpha1.WeightedDestination{
					{Destination: v1alpha1.Destination{Host: host, Subset: "v0"}, Weight: w(80)},
					{Destination: v1alpha1.Destination{Host: host, Subset: v1alpha1.Name(fmt.Sprintf("v%d", 1+r%3))}, Weight: w(20)},
				},
			})
		}
		in.ServiceEntries = append(in.ServiceEntries, se)
		in.DestinationPolicies = append(in.DestinationPolicies, dp)
		in.MetaRouters = append(in.MetaRouters, mr)
	}
	return in
}

// BenchmarkTranslate2000 is the scale target of the issue: 2,000 services
// × 4 subsets × 5 routes, under 1 s and 300 MiB.
func BenchmarkTranslate2000(b *testing.B) {
	in := scaleInput(2000)
	b.ReportAllocs()
	cpu := cpuTime(b)
	for b.Loop() {
		out := Translate(in, Options{})
		if len(out.Resources.Clusters) != 2000*5 {
			b.Fatalf("%d clusters", len(out.Resources.Clusters))
		}
	}
	reportCPU(b, cpu)
}

// cpuTime is the CPU time the process has used (user and system, every
// thread: the garbage collector's too), which a busy machine doesn't
// inflate as it does wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per op since since (cpuTime) as cpu-ms/op.
func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-since)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkTranslate2000Scoped is the same mesh in 40 namespaces of 50
// services, each with a Sidecar seeing its own namespace and ns00: the
// whole mesh plus 40 views of 50 or 100 services (docs/scoping.md).
func BenchmarkTranslate2000Scoped(b *testing.B) {
	in := scaleInput(2000)
	for i, se := range in.ServiceEntries {
		ns := fmt.Sprintf("ns%02d", i%40)
		se.Namespace, in.DestinationPolicies[i].Namespace, in.MetaRouters[i].Namespace = ns, ns, ns
	}
	for n := range 40 {
		in.Sidecars = append(in.Sidecars, &v1alpha1.Sidecar{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: fmt.Sprintf("ns%02d", n)},
			Spec: v1alpha1.SidecarSpec{Egress: []v1alpha1.SidecarEgress{{Hosts: []string{"./*", "ns00/*"}}}}})
	}
	b.ReportAllocs()
	cpu := cpuTime(b)
	for b.Loop() {
		out := Translate(in, Options{})
		if len(out.Views.Namespaces) != 40 || len(out.Views.For("ns01").Clusters) != 100*5 {
			b.Fatalf("%d views, %d clusters in ns01's", len(out.Views.Namespaces), len(out.Views.For("ns01").Clusters))
		}
	}
	reportCPU(b, cpu)
}
