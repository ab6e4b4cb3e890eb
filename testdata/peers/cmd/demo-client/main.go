// Command demo-client sends mixed traffic through the metamesh demo proxy:
// a share of calls carries the attachment batchjob=true, the rest does not.
// Every second it prints where the calls of each kind were served (the
// greeter replies "<version>|<name>"), so the batch-job isolation and the
// canary split are visible as they happen.
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
)

func main() {
	addr := flag.String("addr", "127.0.0.1:20880", "the proxy's Dubbo listener")
	workers := flag.Int("workers", 4, "concurrent callers")
	batchEvery := flag.Int("batch-every", 4, "every Nth call is a batch job (batchjob=true)")
	rate := flag.Duration("interval", 5*time.Millisecond, "pause between calls of one caller")
	flag.Parse()

	c, err := dubboclient.New(*addr, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-client:", err)
		os.Exit(1)
	}
	defer c.Close()
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
				kind, cctx := "user", ctx
				if i%*batchEvery == 0 {
					kind, cctx = "batchjob", dubboclient.WithAttachments(ctx, map[string]string{"batchjob": "true"})
				}
				reply, err := c.SayHello(cctx, fmt.Sprintf("w%d-%d", w, i))
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
			fmt.Println(line(counts))
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
