// Command demo-client sends mixed traffic through the metamesh demo proxy:
// a share of calls carries batchjob=true (a Dubbo attachment, or a THeader
// info header with --protocol thrift), the rest does not. Every second it
// prints where the calls of each kind were served (the servers reply
// "<version>|..."), so the batch-job isolation and the canary split are
// visible as they happen.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
	"github.com/metamesh/metamesh/testdata/peers/thrift"
)

// caller makes one call, as a batch job or not, and returns the reply.
type caller func(ctx context.Context, batch bool, msg string) (string, error)

func main() {
	addr := flag.String("addr", "127.0.0.1:20880", "the proxy's listener")
	protocol := flag.String("protocol", "dubbo", "dubbo, or thrift (THeader + binary)")
	workers := flag.Int("workers", 4, "concurrent callers")
	batchEvery := flag.Int("batch-every", 4, "every Nth call is a batch job (batchjob=true)")
	rate := flag.Duration("interval", 5*time.Millisecond, "pause between calls of one caller")
	flag.Parse()

	callers, closeAll, err := newCallers(*protocol, *addr, *workers)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-client:", err)
		os.Exit(1)
	}
	defer closeAll()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var mu sync.Mutex
	counts := map[string]map[string]int{} // kind → served by → calls
	record := func(kind, by string) {
		mu.Lock()
		defer mu.Unlock()
		if counts[kind] == nil {
			counts[kind] = map[string]int{}
		}
		counts[kind][by]++
	}
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				batch := i%*batchEvery == 0
				kind := "user"
				if batch {
					kind = "batchjob"
				}
				reply, err := callers[w](ctx, batch, fmt.Sprintf("w%d-%d", w, i))
				by, _, _ := strings.Cut(reply, "|")
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					by = "error"
				}
				record(kind, by)
				time.Sleep(*rate)
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
			mu.Lock()
			fmt.Println(*protocol + "  " + line(counts))
			counts = map[string]map[string]int{}
			mu.Unlock()
		}
	}
}

// line renders one second of counts, e.g.
// "batchjob: v2=50 (100%) | user: v1=120 (80%) v2=30 (20%)".
func line(counts map[string]map[string]int) string {
	var parts []string
	for _, kind := range []string{"batchjob", "user"} {
		by := counts[kind]
		total := 0
		keys := make([]string, 0, len(by))
		for k, n := range by {
			total += n
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := kind + ":"
		for _, k := range keys {
			s += fmt.Sprintf(" %s=%d (%.0f%%)", k, by[k], 100*float64(by[k])/float64(total))
		}
		parts = append(parts, s)
	}
	return time.Now().Format("15:04:05") + "  " + strings.Join(parts, " | ")
}

// newCallers connects n callers speaking protocol to addr. A Dubbo client
// multiplexes calls, so the callers share one; a Thrift connection takes
// one call at a time, so each caller has its own.
func newCallers(protocol, addr string, n int) ([]caller, func(), error) {
	callers := make([]caller, n)
	switch protocol {
	case "dubbo":
		c, err := dubboclient.New(addr, "")
		if err != nil {
			return nil, nil, err
		}
		for i := range callers {
			callers[i] = func(ctx context.Context, batch bool, msg string) (string, error) {
				if batch {
					ctx = dubboclient.WithAttachments(ctx, map[string]string{"batchjob": "true"})
				}
				return c.SayHello(ctx, msg)
			}
		}
		return callers, func() { _ = c.Close() }, nil
	case "thrift":
		var conns []*thrift.Client
		closeAll := func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}
		for i := range callers {
			c, err := thrift.Open(addr, thrift.Combo{Transport: "header", Protocol: "binary"}, "")
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			conns = append(conns, c)
			callers[i] = func(ctx context.Context, batch bool, msg string) (string, error) {
				if batch {
					ctx = thrift.WithHeader(ctx, "batchjob", "true")
				}
				return c.Echo(ctx, msg)
			}
		}
		return callers, closeAll, nil
	}
	return nil, nil, fmt.Errorf("--protocol: %q is not dubbo or thrift", protocol)
}
