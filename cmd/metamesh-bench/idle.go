package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// targetIdleConn is issue 21's bound on what an idle client connection
// may cost the proxy (docs/benchmarks.md, "Idle connections").
const targetIdleConn = 16 << 10

// idleListener is a proxy listener the idle measurement opens
// connections to: a codec and the service its requests would go to.
type idleListener struct{ codec, service, defaultService string }

// idleListeners are Dubbo's and Thrift's listeners as in the load runs,
// and Redis's (which the epoll mode reads on event loops).
var idleListeners = []idleListener{
	{dubboWorkload.codec, dubboWorkload.service, dubboWorkload.defaultService},
	{thriftWorkload.codec, thriftWorkload.service, thriftWorkload.defaultService},
	{"redis", "cache", "cache"},
}

// idleSample is a proxy's memory at one moment, after a garbage
// collection.
type idleSample struct {
	rss, heap, stacks uint64 // bytes: resident, Go heap in use, goroutine stacks in use
	fds               int
}

// idleResult is one proxy's memory before and after conns idle
// connections.
type idleResult struct {
	codec, mode   string
	conns         int
	before, after idleSample
}

// perConn returns the growth of v per connection.
func (r idleResult) perConn(v func(idleSample) uint64) float64 {
	return (float64(v(r.after)) - float64(v(r.before))) / float64(r.conns)
}

// idleBench measures, for each idle listener and I/O mode (-io-mode, and
// the other with -io-ab), what o.idleConns idle client connections cost
// a proxy of their own: resident memory from /proc/PID/status, Go heap
// and stacks from its /metrics, each after a garbage collection (asked
// through its /debug/pprof/heap?gc=1). The connections send nothing.
func idleBench(ctx context.Context, o options, stdout io.Writer) error {
	dir, err := os.MkdirTemp("", "metamesh-bench-idle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	modes := []string{o.ioMode}
	if o.ioAB {
		modes = append(modes, otherMode[o.ioMode])
	}
	var results []idleResult
	for _, l := range idleListeners {
		for _, mode := range modes {
			m := o
			m.ioMode = mode
			r, err := idleOne(ctx, m, dir, l)
			if err != nil {
				return fmt.Errorf("idle %s, %s: %w", l.codec, mode, err)
			}
			results = append(results, r)
		}
	}
	reportIdle(stdout, results)
	return nil
}

// idleOne starts a proxy with l's listener (its cluster's endpoint a
// free port nothing listens on: idle connections send nothing upstream)
// and measures it before and after o.idleConns connections.
func idleOne(ctx context.Context, o options, dir string, l idleListener) (idleResult, error) {
	r := idleResult{codec: l.codec, mode: o.ioMode, conns: o.idleConns}
	listen, err1 := freeAddr()
	upstream, err2 := freeAddr()
	admin, err3 := freeAddr()
	if err := errors.Join(err1, err2, err3); err != nil {
		return r, err
	}
	cfg := bootstrapConfig{Listen: listen, Codec: l.codec, Service: l.service, DefaultService: l.defaultService, Upstream: upstream}
	name := "idle-" + l.codec + "-" + o.ioMode
	proxy, err := startProxy(ctx, o, dir, name, cfg, admin, "--pprof")
	if err != nil {
		return r, err
	}
	defer proxy.stop(o.stop)
	pid := proxy.cmd.Process.Pid
	if r.before, err = sampleIdle(pid, admin); err != nil {
		return r, err
	}
	conns := make([]net.Conn, 0, o.idleConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range o.idleConns {
		c, err := net.DialTimeout("tcp", listen, 5*time.Second)
		if err != nil {
			return r, fmt.Errorf("connection %d: %w (raise the open files limit: ulimit -n)", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	// Wait until the proxy holds a descriptor for every connection, then
	// a little for each to be set up (a reader waiting for its first
	// bytes).
	for deadline := time.Now().Add(o.readyTimeout); ; {
		n, err := countFDs(pid)
		if err != nil {
			return r, err
		}
		if n >= r.before.fds+o.idleConns {
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("the proxy holds %d descriptors, %d before %d connections%s", n, r.before.fds, o.idleConns, proxy.logTail())
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	time.Sleep(time.Second)
	if r.after, err = sampleIdle(pid, admin); err != nil {
		return r, err
	}
	if !proxy.alive() {
		return r, fmt.Errorf("proxy exited: %v%s", proxy.waitErr, proxy.logTail())
	}
	return r, nil
}

// sampleIdle collects garbage in the proxy, then reads its memory.
func sampleIdle(pid int, admin string) (idleSample, error) {
	var s idleSample
	if _, err := scrape("http://" + admin + "/debug/pprof/heap?gc=1"); err != nil {
		return s, err
	}
	text, err := scrape("http://" + admin + "/metrics")
	if err != nil {
		return s, err
	}
	heap, err1 := gaugeValue(text, "go_memstats_heap_inuse_bytes")
	stacks, err2 := gaugeValue(text, "go_memstats_stack_inuse_bytes")
	rss, err3 := residentBytes(pid)
	fds, err4 := countFDs(pid)
	s = idleSample{rss: rss, heap: uint64(heap), stacks: uint64(stacks), fds: fds}
	return s, errors.Join(err1, err2, err3, err4)
}

// gaugeValue returns the value of an unlabelled metric in Prometheus
// text format.
func gaugeValue(text, metric string) (float64, error) {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, metric+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", metric)
}

// residentBytes is pid's resident set size (VmRSS in /proc/PID/status).
func residentBytes(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// countFDs is how many descriptors pid has open.
func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	return len(ents), err
}

// reportIdle prints one row per proxy.
func reportIdle(w io.Writer, results []idleResult) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintf(w, "idle connections: %d per proxy, nothing sent; memory after a GC (RSS: /proc/PID/status VmRSS; heap and stacks: /metrics)\n\n", results[0].conns)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "codec\tio-mode\tRSS before\tRSS after\tper conn:\tRSS\theap\tstacks\theap+stacks\t")
	for _, r := range results {
		rss := r.perConn(func(s idleSample) uint64 { return s.rss })
		heap := r.perConn(func(s idleSample) uint64 { return s.heap })
		stacks := r.perConn(func(s idleSample) uint64 { return s.stacks })
		fmt.Fprintf(tw, "%s\t%s\t%.1f MiB\t%.1f MiB\t\t%.1f KiB\t%.1f KiB\t%.1f KiB\t%.1f KiB\t\n", r.codec, r.mode,
			float64(r.before.rss)/(1<<20), float64(r.after.rss)/(1<<20), rss/1024, heap/1024, stacks/1024, (heap+stacks)/1024)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, r := range results {
		rss := r.perConn(func(s idleSample) uint64 { return s.rss })
		fmt.Fprintf(w, "  %s %s: %.1f KiB RSS per idle connection (target <= %d KiB: %s)\n", r.codec, r.mode, rss/1024, targetIdleConn>>10, verdict(rss <= targetIdleConn))
	}
}
