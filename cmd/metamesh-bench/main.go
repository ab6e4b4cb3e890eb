// Command metamesh-bench measures one Dubbo echo workload sent straight to
// a real dubbo-go provider and through a metamesh proxy, on loopback, and
// prints a comparison table (docs/benchmarks.md).
//
// It starts the greeter-server (testdata/peers/cmd/greeter-server) on a
// free 127.0.0.1 port, writes a bootstrap file and starts `metamesh proxy`
// in front of it, then runs the load direct and proxied: -conns
// connections, each keeping -pipeline SayHello requests in flight with a
// -payload byte name, for -warmup and then -duration. Every response must
// echo its own request's name; it exits 1 if any was wrong or missing, 2
// if the benchmark could not run. Both processes are stopped at the end,
// also on Ctrl-C.
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
	"syscall"
	"time"
)

// The greeter-server's interface and reply (see its main.go).
const (
	greeterInterface = "org.apache.dubbo.samples.api.GreetingsService"
	greeterMethod    = "SayHello"
	greeterVersion   = "v1"
)

type options struct {
	metamesh, server   string
	conns, pipeline    int
	payload            int
	duration, warmup   time.Duration
	readyTimeout, stop time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.metamesh, "metamesh", "bin/metamesh", "path of the metamesh binary")
	flag.StringVar(&o.server, "server", "bin/greeter-server", "path of the greeter-server binary")
	flag.IntVar(&o.conns, "conns", 64, "client TCP connections")
	flag.IntVar(&o.pipeline, "pipeline", 1, "requests in flight per connection")
	flag.IntVar(&o.payload, "payload", 64, "bytes of the name argument")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each run")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each run")
	flag.Parse()
	o.readyTimeout, o.stop = time.Minute, 15*time.Second
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
	if o.conns < 1 || o.pipeline < 1 || o.payload < 0 || o.duration <= 0 || o.warmup < 0 {
		return errors.New("-conns and -pipeline must be >= 1, -payload >= 0, -duration > 0, -warmup >= 0")
	}
	for _, p := range []*string{&o.metamesh, &o.server} {
		abs, err := exec.LookPath(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	dir, err := os.MkdirTemp("", "metamesh-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	serverAddr, err := freeAddr()
	if err != nil {
		return err
	}
	server, err := startChild("greeter-server", dir, "ready ", o.server,
		"--addr", serverAddr, "--version", greeterVersion, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer server.stop(o.stop)
	if _, err := server.waitReady(ctx, o.readyTimeout); err != nil {
		return err
	}

	proxyAddr, err := freeAddr()
	if err != nil {
		return err
	}
	bootstrap, err := bootstrapConfig{Listen: proxyAddr, Interface: greeterInterface, Upstream: serverAddr}.write(dir)
	if err != nil {
		return err
	}
	proxy, err := startChild("proxy", dir, "", o.metamesh,
		"proxy", "--bootstrap", bootstrap, "--admin", "127.0.0.1:0", "--log-level", "warn")
	if err != nil {
		return err
	}
	defer proxy.stop(o.stop)
	if err := proxy.waitDial(ctx, proxyAddr, o.readyTimeout); err != nil {
		return err
	}

	header := fmt.Sprintf("metamesh-bench: Dubbo %s.%s, %d conns x pipeline %d, payload %d B, warmup %s, %s per run\n"+
		"machine: %d CPUs (GOMAXPROCS %d), %s/%s, bench built with %s",
		greeterInterface, greeterMethod, o.conns, o.pipeline, o.payload, o.warmup, o.duration,
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	procs := map[string]*child{"server": server}
	direct, err := measure(ctx, o, "direct", serverAddr, procs)
	if err != nil {
		return err
	}
	procs["proxy"] = proxy
	proxied, err := measure(ctx, o, "proxied", proxyAddr, procs)
	if err != nil {
		return err
	}
	report(stdout, header, direct, proxied)
	for _, c := range []*child{server, proxy} {
		if !c.alive() {
			return fmt.Errorf("%s exited during the benchmark: %v%s", c.name, c.waitErr, c.logTail())
		}
	}
	if n := direct.res.Errors + proxied.res.Errors; n > 0 {
		return fmt.Errorf("%w: %d errors (proxy log:%s)", errWrong, n, proxy.logTail())
	}
	return nil
}

// measure runs the load against addr, sampling the CPU time of procs and
// of the bench itself around the measured window.
func measure(ctx context.Context, o options, name, addr string, procs map[string]*child) (*measurement, error) {
	pids := map[string]int{"bench": os.Getpid()}
	for n, c := range procs {
		pids[n] = c.cmd.Process.Pid
	}
	m := &measurement{name: name, cpu: map[string]float64{}, syscalls: map[string]float64{}}
	var sampleErr error
	sample := func(sign float64) {
		for n, pid := range pids {
			s, err := cpuSeconds(pid)
			if err == nil {
				m.cpu[n] += sign * s
				var calls uint64
				calls, err = ioSyscalls(pid)
				m.syscalls[n] += sign * float64(calls)
			}
			if err != nil {
				sampleErr = fmt.Errorf("counters of %s: %w", n, err)
			}
		}
	}
	res, err := runLoad(ctx, loadConfig{
		Addr: addr, Interface: greeterInterface, Method: greeterMethod, Reply: greeterVersion + "|",
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
