// Command metamesh-bench measures echo workloads sent straight to real
// servers and through a metamesh proxy, on loopback, and prints a
// comparison table (docs/benchmarks.md): Dubbo against a dubbo-go
// provider and Thrift against an apache/thrift Go server.
//
// For each protocol in -protocols it starts the server on a free
// 127.0.0.1 port, writes a bootstrap file and starts `metamesh proxy` in
// front of it, then runs the load direct and proxied: -conns connections,
// each keeping -pipeline requests in flight with a -payload byte string
// argument, for -warmup and then -duration. With -access-log-percent P it
// also runs the load through a second proxy that writes an access log of
// P% of the requests, to read the cost of logging against the plain
// proxied run; with -mirror-percent M, through one mirroring M% of the
// requests to a second cluster of the same server (a worst case: the
// server also does the copies' work), to read the primary's latency; with
// -global-rate-limit, through one whose global rate limit asks a
// rate-limit service about every request and one whose limit matches
// none, to read what a global limit costs. Every reply must echo its own
// request's argument; it exits 1 if any was wrong or missing, 2 if the
// benchmark could not run. The processes of a protocol are stopped before
// the next one starts (and on Ctrl-C).
//
// With -idle-conns N it runs no load: for Dubbo, Thrift and Redis
// listeners in turn, it starts a proxy, opens N connections that send
// nothing and reports the proxy's memory per connection.
//
// -io-mode is every proxy's --io-mode (docs/proxy-config.md, "I/O mode");
// with -io-ab the plain proxied run is made again through a proxy in the
// other mode, in the same run, to compare the two. With -rounds N those
// runs are made N times, back to back (every second round in the reverse
// order), and the comparison gives each round's figures and judges their
// median: on a machine whose speed drifts over minutes, a pair of runs
// made together compares better than runs made apart (docs/benchmarks.md,
// "Command").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	metamesh           string
	servers            map[string]string // server binary by protocol
	protocols          []*workload
	conns, pipeline    int
	payload            int
	duration, warmup   time.Duration
	readyTimeout, stop time.Duration
	// accessLogPercent > 0 adds a run through a proxy logging that share
	// of the requests; mirrorPercent > 0 one through a proxy mirroring
	// that share to the server.
	accessLogPercent float64
	mirrorPercent    int
	// mtls adds runs through two proxies, plaintext and with mutual TLS
	// between them.
	mtls bool
	// globalRateLimit adds runs through proxies with a global rate limit:
	// one every request asks about, one no request matches.
	globalRateLimit bool
	// ioMode is every proxy's --io-mode ("" for goroutine);
	// ioAB adds a proxied run through a proxy in the other mode.
	ioMode string
	ioAB   bool
	// rounds is how many times the direct and proxied runs (and the
	// -io-ab one) are made, back to back; the comparison reads the
	// median round.
	rounds int
	// idleConns > 0 measures what that many idle client connections cost
	// a proxy's memory, instead of the load runs.
	idleConns int
}

func main() {
	var o options
	flag.StringVar(&o.metamesh, "metamesh", "bin/metamesh", "path of the metamesh binary")
	servers := map[string]*string{}
	for _, w := range workloads {
		servers[w.name] = flag.String(w.name+"-server", "bin/"+w.server, "path of the "+w.server+" binary")
	}
	protocols := flag.String("protocols", knownProtocols(), "comma-separated protocols to run")
	flag.IntVar(&o.conns, "conns", 64, "client TCP connections")
	flag.IntVar(&o.pipeline, "pipeline", 1, "requests in flight per connection")
	flag.IntVar(&o.payload, "payload", 64, "bytes of the string argument")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each run")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each run")
	flag.Float64Var(&o.accessLogPercent, "access-log-percent", 0, "if > 0, also run through a proxy writing an access log of this percentage of the requests")
	flag.IntVar(&o.mirrorPercent, "mirror-percent", 0, "if > 0, also run through a proxy mirroring this percentage of the requests to the server")
	flag.BoolVar(&o.mtls, "mtls", false, "also run through two proxies (a consumer's sidecar and a provider's), plaintext and with mutual TLS between them, and compare")
	flag.BoolVar(&o.globalRateLimit, "global-rate-limit", false, "also run through a proxy whose global rate limit asks a rate-limit service (in the bench, answering OK) about every request, and one whose limit matches no request, and compare each with the plain proxied run")
	flag.StringVar(&o.ioMode, "io-mode", "epoll", "the proxies' --io-mode: epoll (their default on Linux) or goroutine")
	flag.BoolVar(&o.ioAB, "io-ab", false, "also run through a proxy in the other --io-mode, in the same run, and compare")
	flag.IntVar(&o.rounds, "rounds", 1, "make the direct and proxied runs (and the -io-ab one) this many times, back to back, and judge the median of the rounds' figures")
	flag.IntVar(&o.idleConns, "idle-conns", 0, "if > 0, instead of the load runs, open this many idle connections to a proxy of each codec (dubbo, thrift, redis) and report its memory per connection")
	flag.Parse()
	o.readyTimeout, o.stop = time.Minute, 15*time.Second
	o.servers = map[string]string{}
	for name, path := range servers {
		o.servers[name] = *path
	}
	var err error
	if o.protocols, err = parseProtocols(*protocols); err != nil {
		fmt.Fprintln(os.Stderr, "metamesh-bench:", err)
		os.Exit(2)
	}
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "metamesh-bench: unexpected arguments:", flag.Args())
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, o, os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// errWrong marks a benchmark that ran but saw wrong or missing responses.
var errWrong = errors.New("some responses were wrong or missing")

// run returns the exit code: 0, 1 for wrong responses, 2 for a failure.
func run(ctx context.Context, o options, stdout, stderr io.Writer) int {
	err := bench(ctx, o, stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errWrong):
		fmt.Fprintln(stderr, "metamesh-bench:", err)
		return 1
	default:
		fmt.Fprintln(stderr, "metamesh-bench:", err)
		return 2
	}
}

func bench(ctx context.Context, o options, stdout io.Writer) error {
	if o.conns < 1 || o.pipeline < 1 || o.payload < 0 || o.duration <= 0 || o.warmup < 0 || o.accessLogPercent < 0 || o.accessLogPercent > 100 ||
		o.mirrorPercent < 0 || o.mirrorPercent > 100 || o.rounds < 1 {
		return errors.New("-conns, -pipeline and -rounds must be >= 1, -payload >= 0, -duration > 0, -warmup >= 0, -access-log-percent and -mirror-percent in [0, 100]")
	}
	if o.ioMode == "" {
		o.ioMode = "goroutine"
	}
	if _, ok := otherMode[o.ioMode]; !ok {
		return fmt.Errorf("-io-mode %q: goroutine or epoll", o.ioMode)
	}
	if len(o.protocols) == 0 {
		return errors.New("no protocol to run")
	}
	var err error
	if o.metamesh, err = exec.LookPath(o.metamesh); err != nil {
		return err
	}
	if o.idleConns > 0 {
		return idleBench(ctx, o, stdout)
	}
	servers := map[string]string{}
	for _, w := range o.protocols {
		if servers[w.name], err = exec.LookPath(o.servers[w.name]); err != nil {
			return fmt.Errorf("-%s-server: %w", w.name, err)
		}
	}
	o.servers = servers
	dir, err := os.MkdirTemp("", "metamesh-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	var results []*result
	for _, w := range o.protocols {
		r, werr := benchWorkload(ctx, o, w, dir)
		if r != nil {
			results = append(results, r)
		}
		if werr != nil {
			err = fmt.Errorf("%s: %w", w.name, werr)
			break
		}
	}
	if len(results) > 0 {
		report(stdout, header(o), o.conns, results)
	}
	if err != nil {
		return err
	}
	var wrong []string
	for _, r := range results {
		if n := r.errors(); n > 0 {
			wrong = append(wrong, fmt.Sprintf("%s: %d errors (proxy log:%s)", r.work.name, n, r.proxyLog))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%w: %s", errWrong, strings.Join(wrong, "; "))
	}
	return nil
}

// header describes the settings, the machine and the workloads.
func header(o options) string {
	var b strings.Builder
	rounds := ""
	if o.rounds > 1 {
		rounds = fmt.Sprintf(" in each of %d rounds", o.rounds)
	}
	fmt.Fprintf(&b, "metamesh-bench: %d conns x pipeline %d, payload %d B, warmup %s, %s per run%s, proxy --io-mode %s\n"+
		"machine: %d CPUs (GOMAXPROCS %d), %s/%s, bench built with %s",
		o.conns, o.pipeline, o.payload, o.warmup, o.duration, rounds, o.ioMode,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	for _, w := range o.protocols {
		fmt.Fprintf(&b, "\n%s: %s", w.name, w.title)
	}
	return b.String()
}
