package fault

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/harness"
)

var (
	churnFor = flag.Duration("fault.duration", 20*time.Second, "how long the config churn runs (make soak: minutes)")
	soakFor  = flag.Duration("fault.soak", 0, "repeat the upstream fault scenarios for this long (make soak); 0: once")
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	harness.CleanupBuilds()
	os.Exit(code)
}

// outcome is what a client call got, as the suite judges it.
type outcome int

const (
	own    outcome = iota // its own reply
	native                // the proxy's protocol-native error (Dubbo status, TApplicationException, -ERR)
	wrong                 // anything else: another call's reply, a client timeout, a broken connection
)

// tally counts outcomes and keeps the first few wrong ones for the report.
type tally struct {
	own, native, wrong atomic.Int64
	mu                 sync.Mutex
	examples           []string
}

func (t *tally) add(o outcome, detail string) {
	switch o {
	case own:
		t.own.Add(1)
	case native:
		t.native.Add(1)
	default:
		if t.wrong.Add(1) <= 5 {
			t.mu.Lock()
			t.examples = append(t.examples, detail)
			t.mu.Unlock()
		}
	}
}

func (t *tally) String() string {
	return fmt.Sprintf("own %d, native errors %d, wrong %d", t.own.Load(), t.native.Load(), t.wrong.Load())
}

// check fails the test if any call went wrong.
func (t *tally) check(tb testing.TB, what string) {
	tb.Helper()
	if n := t.wrong.Load(); n > 0 {
		t.mu.Lock()
		defer t.mu.Unlock()
		tb.Errorf("%s: %d calls got neither their own reply nor a native error (%s); first ones:\n  %s",
			what, n, t, strings.Join(t.examples, "\n  "))
	}
}

// parallel runs fn(g, i) for i < n in each of callers goroutines and waits.
func parallel(callers, n int, fn func(g, i int)) {
	var wg sync.WaitGroup
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				fn(g, i)
			}
		}()
	}
	wg.Wait()
}

// waitFor polls ok until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// usage is one proxy's goroutines (those labelled with its test's name,
// see startProxyWith) and this process's live heap after a GC: with the
// proxies in process (and the dubbo-go consumers out of it under -race),
// what a fault leaks shows here. The heap is the process's, shared with
// the tests running in parallel: its bound is generous.
type usage struct {
	heap       uint64
	goroutines int
}

func (u usage) String() string {
	return fmt.Sprintf("%d proxy goroutines, live heap %d KiB", u.goroutines, u.heap>>10)
}

// proxyLabel is the pprof label key of a proxy's goroutines.
const proxyLabel = "fault-proxy"

// measure reads the usage of the proxy started by the test named test.
func measure(test string) usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{heap: ms.HeapAlloc, goroutines: proxyGoroutines(test)}
}

// proxyGoroutines counts the goroutines labelled with test's name, from
// the goroutine profile's text form ("N @ …" then "# labels: {…}").
func proxyGoroutines(test string) int {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
	want := fmt.Sprintf("%q:%q", proxyLabel, test)
	total := 0
	lines := strings.Split(buf.String(), "\n")
	for i, line := range lines {
		n, rest, ok := strings.Cut(line, " @ ")
		if !ok || rest == "" || i+1 >= len(lines) {
			continue
		}
		if strings.HasPrefix(lines[i+1], "# labels:") && strings.Contains(lines[i+1], want) {
			k, _ := strconv.Atoi(n)
			total += k
		}
	}
	return total
}

// settles are the bounds of backToBaseline: goroutines within a few of the
// baseline (connections being torn down), the live heap within a generous
// factor (allocator and pool noise, not a leak per call).
const (
	goroutineSlack = 10
	heapFactor     = 2
	heapSlack      = 8 << 20
)

// backToBaseline polls (bounded) until the goroutines are back near base,
// then checks the heap, and logs both figures.
func backToBaseline(t testing.TB, test string, base usage, what string) {
	t.Helper()
	var now usage
	deadline := time.Now().Add(15 * time.Second)
	for {
		now = measure(test)
		if now.goroutines <= base.goroutines+goroutineSlack || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: baseline %v; after %v", what, base, now)
	if now.goroutines > base.goroutines+goroutineSlack {
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Errorf("%s: %d proxy goroutines, baseline %d (+%d allowed); goroutines:\n%s", what, now.goroutines, base.goroutines,
			goroutineSlack, buf.String())
	}
	if now.heap > heapFactor*base.heap+heapSlack {
		t.Errorf("%s: live heap %d KiB, baseline %d KiB: not back", what, now.heap>>10, base.heap>>10)
	}
}
