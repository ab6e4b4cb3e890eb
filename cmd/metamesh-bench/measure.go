package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is one workload's direct and proxied measurements.
type result struct {
	work            *workload
	direct, proxied *measurement
	// logged is the run through a second proxy writing an access log of a
	// sample of the requests (-access-log-percent), nil when not asked
	// for; loggedLines is how many lines that log got.
	logged      *measurement
	loggedLines int
	// mirrored is the run through a proxy mirroring a share of the
	// requests to the server (-mirror-percent), nil when not asked for;
	// mirrorsSent is how many copies that proxy counted as sent.
	mirrored    *measurement
	mirrorsSent float64
	// twoPlain and twoMTLS are the runs through two proxies, plaintext
	// and with mutual TLS between them (-mtls), nil when not asked for.
	twoPlain, twoMTLS *measurement
	// limited and unmatched are the runs through proxies with a global
	// rate limit that every request asks about (never triggering) and
	// one no request matches (-global-rate-limit), nil when not asked
	// for; rlsCalls is how many calls the service got in the first.
	limited, unmatched *measurement
	rlsCalls           int64
	// otherIO is the plain proxied run through a proxy in the other
	// --io-mode (-io-ab), nil when not asked for. handoffs and
	// otherHandoffs are the two proxies' metamesh_event_loop_handoffs_total
	// at the end of their plain runs (warm-up included), nil for a proxy
	// in goroutine mode, which has no loops.
	otherIO                 *measurement
	handoffs, otherHandoffs *float64
	// later are the rounds after the first (-rounds): direct, proxied
	// and otherIO again, back to back, against the same server and
	// proxy, so that each round's proxied/direct is read from runs made
	// minutes apart at most.
	later []abRound
	// proxyLog is the end of the log of each proxy whose run had wrong
	// replies.
	proxyLog string
}

// abRound is one round of the runs -rounds repeats: direct, proxied and,
// with -io-ab, proxied in the other I/O mode (nil otherwise).
type abRound struct{ direct, proxied, otherIO *measurement }

// benchWorkload starts w's server and a proxy in front of it, with their
// files in a directory of their own under dir, measures the load direct
// and proxied, and stops both. When a process died after both runs, it
// returns the result with the error.
func benchWorkload(ctx context.Context, o options, w *workload, dir string) (*result, error) {
	dir = filepath.Join(dir, w.name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	serverAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	server, err := startChild(w.server, dir, w.ready, o.servers[w.name], w.serverArgs(serverAddr)...)
	if err != nil {
		return nil, err
	}
	defer server.stop(o.stop)
	if w.ready != "" {
		_, err = server.waitReady(ctx, o.readyTimeout)
	} else {
		err = server.waitDial(ctx, serverAddr, o.readyTimeout)
	}
	if err != nil {
		return nil, err
	}

	proxyAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := bootstrapConfig{Listen: proxyAddr, Codec: w.codec, Service: w.service, DefaultService: w.defaultService, Upstream: serverAddr}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	proxy, err := startProxy(ctx, o, dir, "proxy", cfg, admin)
	if err != nil {
		return nil, err
	}
	defer proxy.stop(o.stop)

	r := &result{work: w}
	procs := map[string]*child{"server": server}
	if r.direct, err = measure(ctx, o, w, "direct", serverAddr, procs); err != nil {
		return nil, err
	}
	procs["proxy"] = proxy
	if r.proxied, err = measure(ctx, o, w, "proxied", proxyAddr, procs); err != nil {
		return nil, err
	}
	proxiedMetrics, err := scrape("http://" + admin + "/metrics")
	if err != nil {
		return r, err
	}
	if r.handoffs, err = loopHandoffs(o.ioMode, proxiedMetrics); err != nil {
		return r, err
	}
	if o.ioAB {
		var metricsText string
		if r.otherIO, metricsText, err = otherIORun(ctx, o, w, dir, "", cfg, procs); err != nil {
			return r, err
		}
		if r.otherHandoffs, err = loopHandoffs(otherMode[o.ioMode], metricsText); err != nil {
			return r, err
		}
		r.proxyLog += r.otherIO.proxyLog
	}
	for i := 2; i <= o.rounds; i++ {
		rd, err := nextRound(ctx, o, w, dir, i, cfg, serverAddr, proxyAddr, procs)
		if err != nil {
			return r, err
		}
		r.later = append(r.later, rd)
	}
	children := []*child{server, proxy}
	if o.accessLogPercent > 0 {
		// A proxy of its own, so the log is all this run's, with the same
		// config but the access log.
		logCfg := cfg
		logCfg.AccessLog, logCfg.AccessLogPercent = filepath.Join(dir, "access.log"), o.accessLogPercent
		name := fmt.Sprintf("log %g%%", o.accessLogPercent)
		if r.logged, _, err = variant(ctx, o, w, dir, name, "proxy-access-log", logCfg, procs); err != nil {
			return r, err
		}
		r.proxyLog += r.logged.proxyLog
		if r.loggedLines, err = countLines(logCfg.AccessLog); err != nil {
			return nil, err
		}
	}
	if o.mirrorPercent > 0 {
		mirrorCfg := cfg
		mirrorCfg.MirrorPercent = o.mirrorPercent
		name := fmt.Sprintf("mirror %d%%", o.mirrorPercent)
		var metricsText string
		if r.mirrored, metricsText, err = variant(ctx, o, w, dir, name, "proxy-mirror", mirrorCfg, procs); err != nil {
			return r, err
		}
		r.proxyLog += r.mirrored.proxyLog
		r.mirrorsSent = sumSeries(metricsText, "metamesh_mirror_requests_total", `result="sent"`)
	}
	if o.globalRateLimit {
		if err := globalLimitRuns(ctx, o, w, dir, cfg, procs, r); err != nil {
			return r, err
		}
	}
	if o.mtls {
		if r.twoPlain, err = twoProxies(ctx, o, w, dir, "2 proxies", cfg, false, server); err != nil {
			return r, err
		}
		if r.twoMTLS, err = twoProxies(ctx, o, w, dir, "2 proxies mTLS", cfg, true, server); err != nil {
			return r, err
		}
		r.proxyLog += r.twoPlain.proxyLog + r.twoMTLS.proxyLog
	}
	for _, c := range children {
		if !c.alive() {
			return r, fmt.Errorf("%s exited during the benchmark: %v%s", c.name, c.waitErr, c.logTail())
		}
	}
	if r.errors() > 0 {
		r.proxyLog = proxy.logTail() + r.proxyLog
	}
	return r, nil
}

// nextRound measures round i of -rounds: direct, proxied (procs' proxy)
// and, with -io-ab, proxied in the other mode, each run named with i, in
// roundRuns' order.
func nextRound(ctx context.Context, o options, w *workload, dir string, i int, cfg bootstrapConfig, serverAddr, proxyAddr string, procs map[string]*child) (abRound, error) {
	var rd abRound
	for _, run := range roundRuns(i, o.ioAB) {
		var err error
		switch run {
		case runDirect:
			rd.direct, err = measure(ctx, o, w, fmt.Sprintf("direct %d", i), serverAddr, map[string]*child{"server": procs["server"]})
		case runProxied:
			rd.proxied, err = measure(ctx, o, w, fmt.Sprintf("proxied %d", i), proxyAddr, procs)
		case runOtherIO:
			rd.otherIO, _, err = otherIORun(ctx, o, w, dir, fmt.Sprintf(" %d", i), cfg, procs)
		}
		if err != nil {
			return rd, err
		}
	}
	return rd, nil
}

// roundRun is one of a round's runs.
type roundRun int

const (
	runDirect roundRun = iota
	runProxied
	runOtherIO // -io-ab's
)

// roundRuns lists the runs of round i (from 1) in the order they are
// made: direct, proxied, then the other I/O mode's with ab, and every
// second round the reverse, so that no run is always made first or last
// (on this machine a run made right after another fares differently).
func roundRuns(i int, ab bool) []roundRun {
	runs := []roundRun{runDirect, runProxied}
	if ab {
		runs = append(runs, runOtherIO)
	}
	if i%2 == 0 {
		slices.Reverse(runs)
	}
	return runs
}

// otherIORun measures the plain proxied run again through a proxy of its
// own in the other --io-mode (-io-ab), its run's name ending in suffix.
func otherIORun(ctx context.Context, o options, w *workload, dir, suffix string, cfg bootstrapConfig, procs map[string]*child) (*measurement, string, error) {
	ab := o
	ab.ioMode = otherMode[o.ioMode]
	return variant(ctx, ab, w, dir, "proxied "+ab.ioMode+suffix, "proxy-"+ab.ioMode, cfg, procs)
}

// runs are the result's measurements in order.
func (r *result) runs() []*measurement {
	var out []*measurement
	for _, rd := range r.rounds() {
		out = append(out, rd.direct, rd.proxied)
		if rd.otherIO != nil {
			out = append(out, rd.otherIO)
		}
	}
	for _, m := range []*measurement{r.logged, r.mirrored, r.limited, r.unmatched, r.twoPlain, r.twoMTLS} {
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// rounds are the direct, proxied and other I/O mode runs of every round,
// the first one's first.
func (r *result) rounds() []abRound {
	return append([]abRound{{r.direct, r.proxied, r.otherIO}}, r.later...)
}

// errors counts the wrong or missing replies of every run.
func (r *result) errors() uint64 {
	var n uint64
	for _, m := range r.runs() {
		n += m.res.Errors
	}
	return n
}

// variant measures one more run through a proxy of its own on cfg (a
// variant of the plain proxied run's config), as procs' "proxy", and
// stops that proxy (which flushes its access log as it exits). It
// returns the proxy's /metrics as scraped at the end of the run; the
// measurement keeps the end of the proxy's log if a reply was wrong.
func variant(ctx context.Context, o options, w *workload, dir, name, proc string, cfg bootstrapConfig, procs map[string]*child) (*measurement, string, error) {
	var err error
	if cfg.Listen, err = freeAddr(); err != nil {
		return nil, "", err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	proxy, err := startProxy(ctx, o, dir, proc, cfg, admin)
	if err != nil {
		return nil, "", err
	}
	defer proxy.stop(o.stop)
	run := map[string]*child{"proxy": proxy}
	for n, c := range procs {
		if n != "proxy" {
			run[n] = c
		}
	}
	m, err := measure(ctx, o, w, name, cfg.Listen, run)
	if err != nil {
		return nil, "", err
	}
	if m.res.Errors > 0 {
		m.proxyLog = proxy.logTail()
	}
	if !proxy.alive() {
		return m, "", fmt.Errorf("%s exited during the benchmark: %v%s", proxy.name, proxy.waitErr, proxy.logTail())
	}
	metricsText, err := scrape("http://" + admin + "/metrics")
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", proc, err)
	}
	return m, metricsText, nil
}

// startProxy writes cfg as the bootstrap file name+".yaml" in dir and
// starts `metamesh proxy` on it with its admin address on admin ("" for
// any), returning once it accepts connections on its listener and, when
// given, on its admin address (which the proxy may open after its
// listeners: a sample taken at once found it refused).
func startProxy(ctx context.Context, o options, dir, name string, cfg bootstrapConfig, admin string, extra ...string) (*child, error) {
	bootstrap, err := cfg.write(dir, name+".yaml")
	if err != nil {
		return nil, err
	}
	proxy, err := startChild(name, dir, "", o.metamesh,
		append([]string{"proxy", "--bootstrap", bootstrap, "--admin", cmp.Or(admin, "127.0.0.1:0"), "--log-level", "warn",
			"--io-mode", o.ioMode}, extra...)...)
	if err != nil {
		return nil, err
	}
	for _, addr := range []string{cfg.Listen, admin} {
		if addr == "" {
			continue
		}
		if err := proxy.waitDial(ctx, addr, o.readyTimeout); err != nil {
			proxy.stop(o.stop)
			return nil, err
		}
	}
	proxy.admin = admin
	return proxy, nil
}

// otherMode is the --io-mode an -io-ab run uses, by the main one's.
var otherMode = map[string]string{"goroutine": "epoll", "epoll": "goroutine"}

// countLines counts the lines of the file at path.
func countLines(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("access log: %w", err)
	}
	return bytes.Count(data, []byte{'\n'}), nil
}

// measure runs the load against addr, sampling the CPU time, read/write
// syscalls and context switches of procs and of the bench itself around
// the measured window.
func measure(ctx context.Context, o options, w *workload, name, addr string, procs map[string]*child) (*measurement, error) {
	pids := map[string]int{"bench": os.Getpid()}
	admins := map[string]string{}
	for n, c := range procs {
		pids[n] = c.cmd.Process.Pid
		if c.admin != "" {
			admins[n] = c.admin
		}
	}
	m := &measurement{name: name, cpu: map[string]float64{}, syscalls: map[string]float64{}, switches: map[string]float64{}}
	var sampleErr error
	sample := func(sign float64) {
		for n, pid := range pids {
			s, err1 := cpuSeconds(pid)
			calls, err2 := ioSyscalls(pid)
			switches, err3 := ctxSwitches(pid)
			var enters uint64
			var err4 error
			if admin := admins[n]; admin != "" {
				enters, err4 = ringEnters(admin)
			}
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				sampleErr = fmt.Errorf("counters of %s: %w", n, err)
				continue
			}
			m.cpu[n] += sign * s
			m.syscalls[n] += sign * float64(calls+enters)
			m.switches[n] += sign * float64(switches)
			if n == "proxy" {
				m.ringEnters += sign * float64(enters)
			}
		}
	}
	res, err := runLoad(ctx, loadConfig{
		Addr: addr, Work: w, Reply: serverVersion + "|",
		Conns: o.conns, Pipeline: o.pipeline, Payload: o.payload, Warmup: o.warmup, Duration: o.duration,
		OnMeasure: func(start bool) {
			if start {
				sample(-1)
			} else {
				sample(+1)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s run: %w", name, err)
	}
	if sampleErr != nil {
		return nil, sampleErr
	}
	m.res = res
	return m, nil
}

// scrape returns the body of a GET of url.
func scrape(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

// sumSeries adds the values of the series of metric whose labels contain
// label, in Prometheus text format.
func sumSeries(text, metric, label string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") || !strings.Contains(line, label) {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// loopHandoffs reads metamesh_event_loop_handoffs_total from a proxy's
// /metrics text when it runs in mode epoll; nil otherwise.
func loopHandoffs(mode, metricsText string) (*float64, error) {
	if mode != "epoll" {
		return nil, nil
	}
	n, err := gaugeValue(metricsText, "metamesh_event_loop_handoffs_total")
	if err != nil {
		return nil, err
	}
	return &n, nil
}
