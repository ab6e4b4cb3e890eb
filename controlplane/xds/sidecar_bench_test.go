package xds_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/controlplane/xds"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// The scale of the BenchmarkSidecar* benchmarks (issue 22's targets:
// 2,000 sidecars × 2,000 services, scopes of 50 services).
var (
	benchSidecars = flag.Int("xds.sidecars", 2000, "simulated sidecars in the BenchmarkSidecar* benchmarks")
	benchScope    = flag.Int("xds.scope", 50, "services each sidecar sees in BenchmarkSidecarOneServiceChange")
	benchFleet    = flag.String("xds.fleet", "grpc", "the BenchmarkSidecar* fleet: grpc (grpc-go clients) or h2 (lean sidecars on an HTTP/2 framer, h2sidecar_test.go)")
	benchProfile  = flag.String("xds.cpuprofile", "", "write the control plane's CPU profile during the ops (not the setup) of BenchmarkSidecarFullPush and BenchmarkSidecarReconnectStorm/fresh to this file (of the resume storm: to this file.resume), and the sidecars' to that file.fleet")
)

// profileOps starts the control plane's CPU profile to file, unless
// file is "", and returns its stop; the sidecars, in a process of their
// own, are not in it.
func profileOps(b *testing.B, file string) (stop func()) {
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// liveHeap is the heap left after two collections (the first moves
// gRPC's pooled buffers to sync.Pool's victim cache, the second frees
// them).
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// peakHeap samples the heap's live and not yet collected objects every
// 10 ms until stopped, and returns the highest.
func peakHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done, peak := make(chan struct{}), make(chan uint64)
	go func() {
		var high uint64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			high = max(high, sample[0].Value.Uint64())
			select {
			case <-done:
				peak <- high
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-peak }
}

func sidecarNodes(n int, ns func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("sidecar-%04d.%s", i, ns(i))
	}
	return out
}

const mib = 1 << 20

// cpuTime is the CPU time (user and system) the benchmark's process has
// used: the control plane's, the sidecars being in a process of their
// own (fleetMain).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeCalls is the number of write system calls the process has made
// (Linux's /proc/self/io syscw; -1 elsewhere): gRPC's writes to the
// sockets, a count a busy machine does not change.
func writeCalls() int64 {
	io, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(io)) {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// changed waits for current() to differ from old (the publish after an
// update, the debounce away) and returns it.
func changed(b testing.TB, current func() string, old string) string {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if v := current(); v != old {
			return v
		}
		if time.Now().After(deadline) {
			b.Fatalf("no version other than %s published within a minute", old)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkSidecarFullPush is issue 22's first target: 2,000 sidecars
// (delta, one view) × 2,000 services; one op is a MetaRouter change on
// every service, from Update to every sidecar having ACKed the new route
// version, the debounce included. Besides the wall time, it reports the
// control plane's CPU time per op (the sidecars run in a process of
// their own), its memory per connected sidecar (the live heap with the
// sidecars connected minus before, over their number), the live heap
// after the pushes, and the peak heap during them.
func BenchmarkSidecarFullPush(b *testing.B) {
	n, services := *benchSidecars, *benchServices
	sets := [3]*xdsapi.Resources{resourcesFor(services, "v1"), resourcesFor(services, "v2"), resourcesFor(services, "v3")}
	srv, addr := startServer(b, xds.Options{Log: zap.NewNop()}, nil)
	srv.Update(sets[0])
	for !srv.Ready() {
		time.Sleep(time.Millisecond)
	}
	route := func() string { return srv.Versions()["route"] }
	before := liveHeap()
	p := startFleetProc(b, fleetSpec{Addr: addr, Sidecars: n, Fleet: *benchFleet,
		Expect: map[string]map[string]typeDigest{"default": expectOf(sets[0])}})
	defer p.stop(b)
	p.connect(b)
	p.wait(b, "*", route())
	connected := liveHeap()

	b.ReportAllocs()
	var total, cpu, fleetCPU time.Duration
	var peak uint64
	var writes int64
	ops := 0
	stopProfile, stopFleetProfile := profileOps(b, *benchProfile), p.profile(b, *benchProfile)
	for b.Loop() {
		ops++
		old := route()
		stopPeak := peakHeap()
		f0, w0 := p.cpu(b), writeCalls()
		c0, t0 := cpuTime(), time.Now()
		srv.Update(sets[ops%3])
		p.wait(b, "*", changed(b, route, old))
		total += time.Since(t0)
		cpu += cpuTime() - c0
		writes += writeCalls() - w0
		fleetCPU += p.cpu(b) - f0
		peak = max(peak, stopPeak())
	}
	stopProfile()
	stopFleetProfile()
	b.ReportMetric(float64(total.Milliseconds())/float64(ops), "ms-to-all-acked")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(ops), "cp-CPU-ms/op")
	b.ReportMetric(float64(fleetCPU.Milliseconds())/float64(ops), "fleet-CPU-ms/op")
	b.ReportMetric(float64(writes)/float64(ops), "writes/op")
	b.ReportMetric(float64(int64(connected)-int64(before))/float64(n)/1024, "KiB-per-sidecar")
	b.ReportMetric(float64(peak)/mib, "MiB-peak-heap")
	b.ReportMetric(float64(liveHeap())/mib, "MiB-live-heap")
	b.ReportMetric(float64(p.call(b, "reconnects")[0]), "reconnects")
}

// BenchmarkSidecarOneServiceChange is issue 22's scoped target: 2,000
// services in namespaces of 50 (-xds.scope), each namespace a view; the
// 2,000 sidecars spread over the namespaces. One op changes one service's
// MetaRouter: from UpdateViews to every sidecar of its namespace having
// ACKed, the debounce included; other-acks counts the responses the other
// sidecars got meanwhile (none expected).
func BenchmarkSidecarOneServiceChange(b *testing.B) {
	n, services, scope := *benchSidecars, *benchServices, *benchScope
	namespaces := services / scope
	canary := map[int]string{}
	canaryOf := func(i int) string {
		if c, ok := canary[i]; ok {
			return c
		}
		return "v1"
	}
	viewOf := func(j int) *xdsapi.Resources {
		return translate.Translate(serviceRange(j*scope, (j+1)*scope, canaryOf), translate.Options{}).Resources
	}
	views := &xdsapi.Views{Default: &xdsapi.Resources{}, Namespaces: map[string]*xdsapi.Resources{}}
	for j := range namespaces {
		views.Namespaces[benchNamespace(j)] = viewOf(j)
	}
	srv, addr := startServer(b, xds.Options{Log: zap.NewNop()}, nil)
	srv.UpdateViews(views)
	for !srv.Ready() {
		time.Sleep(time.Millisecond)
	}
	route := func(ns string) func() string {
		return func() string { return srv.VersionsFor("sidecar." + ns)["route"] }
	}
	expect := map[string]map[string]typeDigest{}
	for ns, view := range views.Namespaces {
		expect[ns] = expectOf(view)
	}
	p := startFleetProc(b, fleetSpec{Addr: addr, Sidecars: n, Namespaces: namespaces, Fleet: *benchFleet, Expect: expect})
	defer p.stop(b)
	p.connect(b)
	for j := range namespaces {
		p.wait(b, benchNamespace(j), route(benchNamespace(j))())
	}

	b.ReportAllocs()
	var total, cpu time.Duration
	var others int64
	ops := 0
	for b.Loop() {
		ops++
		svc := (ops * 7919) % services
		j := svc / scope
		ns := benchNamespace(j)
		canary[svc] = map[string]string{"v1": "v2", "v2": "v1"}[canaryOf(svc)]
		next := &xdsapi.Views{Default: views.Default, Namespaces: maps.Clone(views.Namespaces)}
		next.Namespaces[ns] = viewOf(j)
		views = next
		old := route(ns)()
		allBefore, inBefore := p.acks(b, ns)
		c0, t0 := cpuTime(), time.Now()
		srv.UpdateViews(next)
		all, in := p.wait(b, ns, changed(b, route(ns), old))
		total += time.Since(t0)
		cpu += cpuTime() - c0
		others += (all - allBefore) - (in - inBefore)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(ops), "ms-to-acked")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(ops), "cp-CPU-ms/op")
	b.ReportMetric(float64(others)/float64(ops), "other-acks/op")
	b.ReportMetric(float64(liveHeap())/mib, "MiB-live-heap")
	b.ReportMetric(float64(p.call(b, "reconnects")[0]), "reconnects")
}

// BenchmarkSidecarReconnectStorm is issue 22's storm target: a fresh
// control plane of 2,000 services, and 2,000 sidecars connecting at
// once. One op is from the sidecars' start to every one having ACKed;
// fresh: sidecars that have nothing (the whole config each, the worst
// case); resume: sidecars that name what they have
// (initial_resource_versions, a control-plane restart with the config
// unchanged: nothing is sent), to every one connected. The control
// plane's CPU time and peak heap are measured during the ops;
// reconnects counts the streams that failed and were opened again.
func BenchmarkSidecarReconnectStorm(b *testing.B) {
	n, services := *benchSidecars, *benchServices
	set := resourcesFor(services, "v1")
	start := func(b *testing.B) (*xds.Server, string, func()) {
		srv, addr, stop := startStoppable(b, xds.Options{Log: zap.NewNop()}, nil)
		srv.Update(set)
		for !srv.Ready() {
			time.Sleep(time.Millisecond)
		}
		return srv, addr, stop
	}
	// What a synced sidecar has, for resume.
	have := map[string]map[string]string{}
	{
		srv, addr, stop := start(b)
		ctx, cancel := context.WithCancel(context.Background())
		f := &fleet{acked: make(chan struct{}, 1), cancel: cancel}
		f.add(ctx, addr, "recorder", &sidecar{record: func(typeURL string, r *discoveryv3.Resource) {
			if have[typeURL] == nil {
				have[typeURL] = map[string]string{}
			}
			have[typeURL][r.GetName()] = r.GetVersion()
		}})
		if err := f.waitRoutes(nil, srv.Versions()["route"], time.Minute); err != nil {
			b.Fatal(err)
		}
		f.stop()
		stop()
	}
	haveFile := filepath.Join(b.TempDir(), "have.json")
	if js, err := json.Marshal(have); err != nil {
		b.Fatal(err)
	} else if err := os.WriteFile(haveFile, js, 0o600); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		have string
	}{{"fresh", ""}, {"resume", haveFile}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var total, cpu, fleetCPU time.Duration
			var peak uint64
			var responses, reconnects float64
			var writes int64
			ops := 0
			profile := *benchProfile
			if profile != "" && bc.name == "resume" {
				profile += ".resume"
			}
			stopProfile := profileOps(b, profile)
			defer stopProfile()
			for b.Loop() {
				b.StopTimer()
				srv, addr, stop := start(b)
				p := startFleetProc(b, fleetSpec{Addr: addr, Sidecars: n, Have: bc.have, Fleet: *benchFleet,
					Expect: map[string]map[string]typeDigest{"default": expectOf(set)}})
				runtime.GC()
				stopFleetProfile := p.profile(b, profile)
				stopPeak := peakHeap()
				b.StartTimer()
				ops++
				f0, w0 := p.cpu(b), writeCalls()
				c0, t0 := cpuTime(), time.Now()
				p.connect(b)
				if bc.have == "" {
					p.wait(b, "*", srv.Versions()["route"])
				} else {
					waitConnected(b, srv, n)
				}
				total += time.Since(t0)
				cpu += cpuTime() - c0
				fleetCPU += p.cpu(b) - f0
				writes += writeCalls() - w0
				b.StopTimer()
				stopFleetProfile()
				peak = max(peak, stopPeak())
				reconnects += float64(p.call(b, "reconnects")[0])
				p.stop(b)
				responses += metric(b, srv.Registry(), "metamesh_controlplane_xds_responses_total", nil)
				stop()
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(ops), "ms-to-all-synced")
			b.ReportMetric(float64(cpu.Milliseconds())/float64(ops), "cp-CPU-ms/op")
			b.ReportMetric(float64(fleetCPU.Milliseconds())/float64(ops), "fleet-CPU-ms/op")
			b.ReportMetric(float64(writes)/float64(ops), "writes/op")
			b.ReportMetric(responses/float64(ops), "responses/op")
			b.ReportMetric(reconnects/float64(ops), "reconnects/op")
			b.ReportMetric(float64(peak)/mib, "MiB-peak-heap")
		})
	}
}

// waitConnected waits until n proxies have a stream open and their first
// request handled.
func waitConnected(b *testing.B, srv *xds.Server, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for metric(b, srv.Registry(), "metamesh_controlplane_xds_connected_proxies", nil) != float64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d sidecars not connected within 5 min (%v connected)", n,
				metric(b, srv.Registry(), "metamesh_controlplane_xds_connected_proxies", nil))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
