package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// measurement is one run's load result and, by process, the CPU seconds,
// the read/write system calls and the context switches it used inside the
// measured window.
type measurement struct {
	name     string
	proxyLog string // the end of its proxy's log, when a reply was wrong
	res      *loadResult
	cpu      map[string]float64
	syscalls map[string]float64 // read/write class, and the proxy's io_uring_enter calls
	switches map[string]float64
	// ringEnters is the proxy's io_uring_enter calls, which /proc/PID/io
	// does not count (metamesh_event_loop_ring_enters_total): included in
	// syscalls, and said apart.
	ringEnters float64
}

// perRequest formats counter[proc] per 100k (scale 1e5) or per one
// (scale 1) measured request, or "-" when proc was not sampled.
func (m measurement) perRequest(counter map[string]float64, proc string, scale float64) string {
	v, ok := counter[proc]
	if !ok || m.res.OK == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/float64(m.res.OK)*scale)
}

// targetP99Cost is what the proxy may add to the p99 latency.
const targetP99Cost = time.Millisecond

// targets are what a protocol's proxied run is read against at a number of
// client connections (docs/benchmarks.md): issue 21's for Dubbo at 64 and
// at 8 connections and for Thrift at 64, the first row's 0.60 otherwise.
type targets struct {
	ratio float64       // proxied/direct throughput, at least
	cpu   time.Duration // the proxy's CPU per request, at most (0: none)
}

func targetsFor(protocol string, conns int) targets {
	switch {
	case protocol == "dubbo" && conns >= 64:
		return targets{ratio: 0.75, cpu: 20 * time.Microsecond}
	case protocol == "dubbo" && conns <= 8:
		return targets{ratio: 0.70}
	case protocol == "thrift" && conns >= 64:
		return targets{ratio: 0.80}
	}
	return targets{ratio: 0.60}
}

// report prints one table of every run, then how each protocol's
// proxied run compares with its direct one.
func report(w io.Writer, header string, conns int, results []*result) {
	fmt.Fprintln(w, header)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "protocol\trun\treq/s\tp50\tp99\tp999\tmax\terrors\t\tCPU s/100k req:\tserver\tproxy\tbench\t\tsyscalls/req:\tserver\tproxy\tbench\t\tctx switches/req:\tserver\tproxy\tbench\t")
	for _, r := range results {
		for _, m := range r.runs() {
			h := m.res.Hist
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t\t\t%s\t%s\t%s\t\t\t%s\t%s\t%s\t\t\t%s\t%s\t%s\t\n", r.work.name, m.name, m.res.Throughput(),
				ms(h.Quantile(0.50)), ms(h.Quantile(0.99)), ms(h.Quantile(0.999)), ms(h.Max()), m.res.Errors,
				m.perRequest(m.cpu, "server", 1e5), m.perRequest(m.cpu, "proxy", 1e5), m.perRequest(m.cpu, "bench", 1e5),
				m.perRequest(m.syscalls, "server", 1), m.perRequest(m.syscalls, "proxy", 1), m.perRequest(m.syscalls, "bench", 1),
				m.perRequest(m.switches, "server", 1), m.perRequest(m.switches, "proxy", 1), m.perRequest(m.switches, "bench", 1))
		}
	}
	_ = tw.Flush()
	for _, r := range results {
		fmt.Fprintf(w, "\n%s:\n", r.work.name)
		t := targetsFor(r.work.name, conns)
		rounds := r.rounds()
		compare(w, rounds, func(rd abRound) *measurement { return rd.proxied }, t)
		printHandoffs(w, r.handoffs)
		if r.otherIO != nil {
			fmt.Fprintf(w, "  %s:\n", r.otherIO.name)
			compare(w, rounds, func(rd abRound) *measurement { return rd.otherIO }, t)
			printHandoffs(w, r.otherHandoffs)
		}
		if r.logged != nil {
			compareLogged(w, r)
		}
		if r.mirrored != nil {
			compareMirrored(w, r)
		}
		if r.limited != nil {
			compareGlobal(w, r)
		}
		if r.twoMTLS != nil {
			compareMTLS(w, r)
		}
	}
}

// compareMirrored prints the run with a mirror against the plain proxied
// one: the primary's latency should not move beyond the noise between
// runs (there is no fixed target: read it against two plain runs).
func compareMirrored(w io.Writer, r *result) {
	m := r.mirrored
	if m.res.OK > 0 && r.proxied.res.OK > 0 {
		p, q := r.proxied.res.Hist, m.res.Hist
		fmt.Fprintf(w, "  %-26s throughput %.2f, p50 %s → %s, p99 %s → %s\n", m.name+" vs proxied:",
			m.res.Throughput()/r.proxied.res.Throughput(), ms(p.Quantile(0.5)), ms(q.Quantile(0.5)), ms(p.Quantile(0.99)), ms(q.Quantile(0.99)))
		fmt.Fprintf(w, "  mirror copies sent:        %.0f, %.2f%% of the measured requests (the warm-up's are copied too)\n",
			r.mirrorsSent, 100*r.mirrorsSent/float64(m.res.OK))
	}
	errorSamples(w, m)
}

// targetLogRatio is what logging a sample of the requests may cost: the
// logged run keeps at least this share of the plain proxied throughput.
const targetLogRatio = 0.90

// compareLogged prints the run with an access log against the plain
// proxied one.
func compareLogged(w io.Writer, r *result) {
	m := r.logged
	if m.res.OK > 0 && r.proxied.res.OK > 0 {
		ratio := m.res.Throughput() / r.proxied.res.Throughput()
		fmt.Fprintf(w, "  %-26s %.2f (target >= %.2f: %s)\n", m.name+" / proxied throughput:", ratio, targetLogRatio, verdict(ratio >= targetLogRatio))
		fmt.Fprintf(w, "  access log:                %d lines, %.2f%% of the measured requests (the warm-up's are logged too)\n",
			r.loggedLines, 100*float64(r.loggedLines)/float64(m.res.OK))
	}
	errorSamples(w, m)
}

// compare prints the proxied run of each round (picked by proxied)
// against the round's direct one, and the errors of both. With one round
// it prints that round's figures; with more, the median of the rounds'
// figures, the verdicts read on it, and, for the main ones, every round's.
func compare(w io.Writer, rounds []abRound, proxied func(abRound) *measurement, t targets) {
	var ratio, added, cpu, calls, ring, switches, cores series
	var direct, directCores, all, allCores, allRatio series
	for _, rd := range rounds {
		d, p := rd.direct, proxied(rd)
		if d.res.OK == 0 || p.res.OK == 0 {
			continue
		}
		ratio = append(ratio, p.res.Throughput()/d.res.Throughput())
		added = append(added, float64(p.res.Hist.Quantile(0.99)-d.res.Hist.Quantile(0.99)))
		if s, ok := p.cpu["proxy"]; ok {
			n := float64(p.res.OK)
			cpu = append(cpu, s/n*1e6)
			calls = append(calls, p.syscalls["proxy"]/n)
			ring = append(ring, p.ringEnters/n)
			switches = append(switches, p.switches["proxy"]/n)
			cores = append(cores, s/p.res.Elapsed.Seconds())
		}
		// Where client, server and proxy share the machine's cores,
		// proxied/direct is the CPU per request of all of them direct over
		// proxied times the proxied run's cores busy over the direct
		// run's: it tells a proxy that costs too much from one that leaves
		// cores idle (docs/benchmarks.md, "Command").
		dc, dCores, ok := d.allCPU()
		pc, pCores, ok2 := p.allCPU()
		if ok && ok2 {
			direct, directCores = append(direct, dc*1e6), append(directCores, dCores)
			all, allCores, allRatio = append(all, pc*1e6), append(allCores, pCores), append(allRatio, dc/pc)
		}
	}
	if len(ratio) > 0 {
		r, a := ratio.median(), time.Duration(added.median())
		fmt.Fprintf(w, "  proxied/direct throughput: %s (target >= %.2f: %s)\n", ratio.show(f2), t.ratio, verdict(r >= t.ratio))
		fmt.Fprintf(w, "  p99 added by the proxy:    %s (target <= %s: %s)\n", added.show(func(v float64) string { return ms(time.Duration(v)) }),
			ms(targetP99Cost), verdict(a <= targetP99Cost))
	}
	if len(cpu) > 0 {
		perReq := cpu.median()
		cpuTarget := ""
		if t.cpu > 0 {
			cpuTarget = fmt.Sprintf(" (CPU target <= %.0f µs: %s)", t.cpu.Seconds()*1e6, verdict(perReq <= t.cpu.Seconds()*1e6))
		}
		ringNote := ""
		if ring.median() > 0 {
			ringNote = fmt.Sprintf(" (%.2f of them io_uring_enter)", ring.median())
		}
		fmt.Fprintf(w, "  proxy cost:                %s µs CPU, %.2f read/write syscalls%s and %.2f context switches per request, %.2f cores busy%s%s\n",
			cpu.show(f1), calls.median(), ringNote, switches.median(), cores.median(), medians(len(cpu)), cpuTarget)
	}
	if len(all) > 0 {
		fmt.Fprintf(w, "  CPU of all processes:      direct %.1f µs per request, %.2f cores busy; proxied %.1f µs, %.2f cores%s: at equal cores busy, proxied/direct %s\n",
			direct.median(), directCores.median(), all.median(), allCores.median(), medians(len(all)), allRatio.show(f2))
	}
	for _, rd := range rounds {
		errorSamples(w, rd.direct)
		errorSamples(w, proxied(rd))
	}
}

// series is one figure of each round.
type series []float64

// median is the middle value (the mean of the middle two for an even
// count); 0 for none.
func (s series) median() float64 {
	if len(s) == 0 {
		return 0
	}
	v := slices.Clone(s)
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}

// show formats the one value, or the median and then every value in round
// order.
func (s series) show(format func(float64) string) string {
	if len(s) == 1 {
		return format(s[0])
	}
	each := make([]string, len(s))
	for i, v := range s {
		each[i] = format(v)
	}
	return fmt.Sprintf("median %s of %s", format(s.median()), strings.Join(each, ", "))
}

// medians says that the figures before it are medians, when there are
// several rounds.
func medians(rounds int) string {
	if rounds > 1 {
		return " (medians)"
	}
	return ""
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

// allCPU returns the CPU seconds per request of every process sampled in
// m and the cores they kept busy; false when none was sampled or nothing
// was answered.
func (m measurement) allCPU() (perReq, cores float64, ok bool) {
	if len(m.cpu) == 0 || m.res.OK == 0 || m.res.Elapsed <= 0 {
		return 0, 0, false
	}
	var s float64
	for _, v := range m.cpu {
		s += v
	}
	return s / float64(m.res.OK), s / m.res.Elapsed.Seconds(), true
}

// errorSamples prints the first error of each connection of m that had
// any.
func errorSamples(w io.Writer, m *measurement) {
	if len(m.res.Samples) > 0 {
		fmt.Fprintf(w, "  %s errors, first of each connection that had any:\n    %s\n", m.name, strings.Join(m.res.Samples, "\n    "))
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// ms formats a latency in milliseconds with three decimals.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

// targetMTLSRatio is issue 17's target: mutual TLS between the proxies
// keeps at least this share of the plaintext throughput.
const targetMTLSRatio = 0.85

// compareMTLS prints the two-proxy run with mutual TLS against the
// plaintext one: throughput ratio and the proxies' CPU per request; the
// handshake rate is BenchmarkMeshHandshake's, which it points to.
func compareMTLS(w io.Writer, r *result) {
	p, m := r.twoPlain, r.twoMTLS
	ratio := m.res.Throughput() / p.res.Throughput()
	fmt.Fprintf(w, "  %-26s %.2f (target >= %.2f: %s)\n", "2 proxies mTLS / plaintext throughput:", ratio, targetMTLSRatio, verdict(ratio >= targetMTLSRatio))
	fmt.Fprintf(w, "  %-26s plaintext %s, mTLS %s CPU s/100k req (both proxies together)\n", "2 proxies CPU per request:",
		p.perRequest(p.cpu, "proxy", 1e5), m.perRequest(m.cpu, "proxy", 1e5))
	fmt.Fprintf(w, "  %-26s see BenchmarkMeshHandshake's handshakes/s (full and resumed) above, in proxy/mtls\n", "mTLS handshake rate:")
}

// printHandoffs prints an epoll-mode proxy's event loop hand-offs (n nil:
// the proxy ran in goroutine mode).
func printHandoffs(w io.Writer, n *float64) {
	if n != nil {
		fmt.Fprintf(w, "  event loop hand-offs:      %.0f (a handler that waited, or a loop descheduled for a millisecond or more)\n", *n)
	}
}
