package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReportRowsAndSections(t *testing.T) {
	run := func(name string, ok uint64, lat time.Duration, procs ...string) *measurement {
		h := newHistogram()
		for range ok {
			h.Record(lat)
		}
		m := &measurement{name: name, res: &loadResult{Hist: h, OK: ok, Elapsed: time.Second},
			cpu: map[string]float64{}, syscalls: map[string]float64{}, switches: map[string]float64{}}
		for _, p := range procs {
			m.cpu[p], m.syscalls[p], m.switches[p] = float64(ok)*20e-6, float64(ok)*4, float64(ok)/2
		}
		return m
	}
	results := []*result{
		{work: dubboWorkload, direct: run("direct", 1000, time.Millisecond, "server", "bench"),
			proxied: run("proxied", 500, 3*time.Millisecond, "server", "proxy", "bench")},
		{work: thriftWorkload, direct: run("direct", 1000, time.Millisecond, "server", "bench"),
			proxied: run("proxied", 800, time.Millisecond, "server", "proxy", "bench")},
	}
	three, seven := 3.0, 7.0
	results[0].handoffs = &three
	results[1].otherIO, results[1].otherHandoffs = run("proxied epoll", 900, 2*time.Millisecond, "server", "proxy", "bench"), &seven
	results[1].proxied.res.Samples = []string{"response 3: boom"}
	results[1].proxied.ringEnters = 80
	results[0].logged, results[0].loggedLines = run("log 1%", 470, 3*time.Millisecond, "server", "proxy", "bench"), 6
	results[0].mirrored, results[0].mirrorsSent = run("mirror 10%", 400, 4*time.Millisecond, "server", "proxy", "bench"), 41
	var out strings.Builder
	report(&out, "HEADER", 64, results)
	got := out.String()
	for _, want := range []string{
		`(?m)^HEADER\n\n +protocol +run +req/s`,
		`(?m)^ +dubbo +direct +1000 +1\.000ms .* 2\.00 +- +2\.00 +4\.00 +- +4\.00 +0\.50 +- +0\.50$`,
		`(?m)^ +dubbo +proxied +500 `,
		`(?m)^ +dubbo +log 1% +470 `,
		`(?m)^  log 1% / proxied throughput: 0\.94 \(target >= 0\.90: met\)\n  access log: +6 lines, 1\.28% of the measured requests`,
		`(?m)^ +dubbo +mirror 10% +400 `,
		`(?m)^  mirror 10% vs proxied: +throughput 0\.80, p50 3\.\d+ms → 4\.\d+ms, p99 3\.\d+ms → 4\.\d+ms\n  mirror copies sent: +41, 10\.25% of the measured requests`,
		`(?m)^ +thrift +direct +1000 `,
		`(?m)^ +thrift +proxied +800 `,
		`(?m)^dubbo:\n  proxied/direct throughput: 0\.50 \(target >= 0\.75: MISSED\)\n  p99 added by the proxy: +2\.\d+ms \(target <= 1\.000ms: MISSED\)\n  proxy cost: +20\.0 µs CPU, 4\.00 read/write syscalls and 0\.50 context switches per request, .* \(CPU target <= 20 µs: met\)\n  CPU of all processes: +direct 40\.0 µs per request, 0\.04 cores busy; proxied 60\.0 µs, 0\.03 cores: at equal cores busy, proxied/direct 0\.67\n  event loop hand-offs: +3 \(`,
		`(?m)^thrift:\n  proxied/direct throughput: 0\.80 \(target >= 0\.80: met\)\n  p99 added by the proxy: +0\.000ms \(target <= 1\.000ms: met\)\n  proxy cost: +20\.0 µs CPU, 4\.00 read/write syscalls \(0\.10 of them io_uring_enter\) and 0\.50 context`,
		`(?m)^ +thrift +proxied epoll +900 `,
		`(?m)^  proxied epoll:\n  proxied/direct throughput: 0\.90 \(target >= 0\.80: met\)\n  p99 added by the proxy: +1\.\d+ms.*\n.*\n.*\n  event loop hand-offs: +7 \(`,
		`(?m)^  proxied errors, first of each connection that had any:\n    response 3: boom$`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("report does not match %s:\n%s", want, got)
		}
	}
	// Hand-offs only for the two proxies in epoll mode.
	if n := strings.Count(got, "event loop hand-offs:"); n != 2 {
		t.Errorf("%d hand-off lines, want 2 (dubbo's proxied run, thrift's proxied epoll):\n%s", n, got)
	}
}

func TestTargetsFor(t *testing.T) {
	for _, c := range []struct {
		protocol string
		conns    int
		want     targets
	}{
		{"dubbo", 64, targets{ratio: 0.75, cpu: 20 * time.Microsecond}},
		{"dubbo", 8, targets{ratio: 0.70}},
		{"dubbo", 16, targets{ratio: 0.60}},
		{"thrift", 64, targets{ratio: 0.80}},
		{"thrift", 8, targets{ratio: 0.60}},
	} {
		if got := targetsFor(c.protocol, c.conns); got != c.want {
			t.Errorf("targetsFor(%s, %d) = %+v, want %+v", c.protocol, c.conns, got, c.want)
		}
	}
}

func TestReportRoundsJudgesTheMedian(t *testing.T) {
	run := func(name string, ok uint64, cpuPerReq float64) *measurement {
		h := newHistogram()
		for range ok {
			h.Record(time.Millisecond)
		}
		m := &measurement{name: name, res: &loadResult{Hist: h, OK: ok, Elapsed: time.Second},
			cpu: map[string]float64{"server": float64(ok) * 40e-6}, syscalls: map[string]float64{}, switches: map[string]float64{}}
		if cpuPerReq > 0 {
			m.cpu["proxy"] = float64(ok) * cpuPerReq
		}
		return m
	}
	// Proxied/direct 0.50, 0.90, 0.80 and proxy CPU 30, 19, 21 µs: the
	// medians (0.80, 21 µs) are judged, not the first round nor the best.
	r := &result{work: dubboWorkload, direct: run("direct", 1000, 0), proxied: run("proxied", 500, 30e-6),
		later: []abRound{
			{direct: run("direct 2", 1000, 0), proxied: run("proxied 2", 900, 19e-6)},
			{direct: run("direct 3", 1000, 0), proxied: run("proxied 3", 800, 21e-6)},
		}}
	var out strings.Builder
	report(&out, "HEADER", 64, []*result{r})
	got := out.String()
	for _, want := range []string{
		`(?m)^ +dubbo +direct 2 +1000 `,
		`(?m)^ +dubbo +proxied 3 +800 `,
		`(?m)^  proxied/direct throughput: median 0\.80 of 0\.50, 0\.90, 0\.80 \(target >= 0\.75: met\)$`,
		`(?m)^  proxy cost: +median 21\.0 of 30\.0, 19\.0, 21\.0 µs CPU, .*cores busy \(medians\) \(CPU target <= 20 µs: MISSED\)$`,
		`(?m)^  CPU of all processes: +direct 40\.0 µs per request, .* \(medians\): at equal cores busy, proxied/direct median 0\.66 of 0\.57, 0\.68, 0\.66$`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("report does not match %s:\n%s", want, got)
		}
	}
}

func TestSeriesMedian(t *testing.T) {
	for _, c := range []struct {
		s    series
		want float64
	}{
		{nil, 0},
		{series{3}, 3},
		{series{5, 1, 3}, 3},
		{series{4, 1, 3, 2}, 2.5},
	} {
		if got := c.s.median(); got != c.want {
			t.Errorf("%v.median() = %v, want %v", c.s, got, c.want)
		}
	}
}

// TestRoundRunsAlternate: odd rounds run direct, proxied, then the other
// I/O mode; even rounds the reverse, so no run is always first or last.
func TestRoundRunsAlternate(t *testing.T) {
	for _, tc := range []struct {
		round int
		ab    bool
		want  []roundRun
	}{
		{1, true, []roundRun{runDirect, runProxied, runOtherIO}},
		{2, true, []roundRun{runOtherIO, runProxied, runDirect}},
		{3, true, []roundRun{runDirect, runProxied, runOtherIO}},
		{2, false, []roundRun{runProxied, runDirect}},
		{5, false, []roundRun{runDirect, runProxied}},
	} {
		if got := roundRuns(tc.round, tc.ab); !slices.Equal(got, tc.want) {
			t.Errorf("roundRuns(%d, %v) = %v, want %v", tc.round, tc.ab, got, tc.want)
		}
	}
}
