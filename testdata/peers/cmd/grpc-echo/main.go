// Command grpc-echo is a grpc-go echo server and load client for the
// Triple row of `make bench` (testdata/bench/triple.sh): plain gRPC, the
// wire format Triple shares, with the well-known
// google.protobuf.StringValue as request and reply (no generated code).
//
//	grpc-echo serve --addr A
//
// serves metamesh.bench.Echo/Echo (the reply is the request) and prints
// "ready A" once it accepts connections; SIGTERM stops it.
//
//	grpc-echo load --addr A [--conns N] [--concurrency C] [--payload B] [--warmup D] [--duration D]
//
// runs C callers sharing N client connections, each making one call at a
// time, for the warmup and then the measured duration, and prints one
// JSON line: calls, errors (a call that failed or whose reply is not its
// request), requests per second, latency percentiles in microseconds, and
// the client's own CPU seconds, read/write system calls (/proc/self/io)
// and context switches (getrusage) over the measured part. It exits 1 if
// any call failed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Service is the gRPC service served and called.
const Service = "metamesh.bench.Echo"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grpc-echo serve|load [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (serve, load)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpc-echo:", err)
		os.Exit(1)
	}
}

var echoDesc = grpc.ServiceDesc{
	ServiceName: Service,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Echo", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		return in, nil
	}}},
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	s := grpc.NewServer()
	s.RegisterService(&echoDesc, struct{}{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		s.Stop()
	}()
	fmt.Println("ready", ln.Addr())
	return s.Serve(ln)
}

// result is load's JSON line.
type result struct {
	Calls    int     `json:"calls"`
	Errors   int     `json:"errors"`
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_us"`
	P99      float64 `json:"p99_us"`
	P999     float64 `json:"p999_us"`
	Max      float64 `json:"max_us"`
	CPU      float64 `json:"cpu_s"`
	Syscalls int64   `json:"syscalls"`
	Switches int64   `json:"switches"`
	FirstErr string  `json:"first_error,omitempty"`
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	addr := fs.String("addr", "", "server or proxy address")
	conns := fs.Int("conns", 4, "client connections")
	callers := fs.Int("concurrency", 64, "callers, each with one call at a time")
	payload := fs.Int("payload", 64, "bytes of the request string")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load first")
	duration := fs.Duration("duration", 10*time.Second, "measured time")
	_ = fs.Parse(args)
	ccs := make([]*grpc.ClientConn, *conns)
	for i := range ccs {
		cc, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer cc.Close()
		ccs[i] = cc
	}
	start := time.Now()
	measureFrom, end := start.Add(*warmup), start.Add(*warmup+*duration)
	type tally struct {
		lat      []time.Duration
		errors   int
		firstErr string
	}
	tallies := make([]tally, *callers)
	var wg sync.WaitGroup
	var at usage
	var atOnce sync.Once
	for g := range *callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc, t := ccs[g%len(ccs)], &tallies[g]
			req := wrapperspb.String(fmt.Sprintf("%d-", g) + strings.Repeat("x", *payload))
			out := new(wrapperspb.StringValue)
			for {
				t0 := time.Now()
				if t0.After(end) {
					return
				}
				err := cc.Invoke(context.Background(), "/"+Service+"/Echo", req, out)
				if err == nil && out.GetValue() != req.GetValue() {
					err = fmt.Errorf("reply %.40q to request %.40q", out.GetValue(), req.GetValue())
				}
				if t0.Before(measureFrom) {
					continue
				}
				atOnce.Do(func() { at = usageNow() })
				if err != nil {
					if t.errors == 0 {
						t.firstErr = err.Error()
					}
					t.errors++
					continue
				}
				t.lat = append(t.lat, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	now := usageNow()
	var all []time.Duration
	r := result{CPU: now.cpu - at.cpu, Syscalls: now.syscalls - at.syscalls, Switches: now.switches - at.switches}
	for _, t := range tallies {
		all = append(all, t.lat...)
		r.Errors += t.errors
		if r.FirstErr == "" {
			r.FirstErr = t.firstErr
		}
	}
	slices.Sort(all)
	r.Calls = len(all) + r.Errors
	r.RPS = float64(r.Calls) / duration.Seconds()
	if n := len(all); n > 0 {
		us := func(q float64) float64 { return float64(all[min(int(q*float64(n)), n-1)].Microseconds()) }
		r.P50, r.P99, r.P999, r.Max = us(0.5), us(0.99), us(0.999), float64(all[n-1].Microseconds())
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return err
	}
	if r.Errors > 0 || r.Calls == 0 {
		return fmt.Errorf("%d of %d calls failed: %s", r.Errors, r.Calls, r.FirstErr)
	}
	return nil
}

// usage is what the process has used so far: user+system CPU seconds,
// read/write system calls (syscr+syscw of /proc/self/io, 0 where it is
// missing) and context switches (voluntary and involuntary, all threads).
type usage struct {
	cpu                float64
	syscalls, switches int64
}

func usageNow() usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	u := usage{cpu: tv(ru.Utime) + tv(ru.Stime), switches: ru.Nvcsw + ru.Nivcsw}
	if io, err := os.ReadFile("/proc/self/io"); err == nil {
		for _, line := range strings.Split(string(io), "\n") {
			name, v, _ := strings.Cut(line, ": ")
			if name == "syscr" || name == "syscw" {
				n, _ := strconv.ParseInt(v, 10, 64)
				u.syscalls += n
			}
		}
	}
	return u
}
