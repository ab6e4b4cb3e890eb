package fault

import (
	"flag"
	"fmt"
	"os"
	"runtime"
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

// usage is this process's live heap (after a GC) and goroutines: with the
// proxy in process (and the dubbo-go consumers out of it under -race),
// what a fault leaks shows here.
type usage struct {
	heap       uint64
	goroutines int
}

func measure() usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine()}
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, live heap %d KiB", u.goroutines, u.heap>>10)
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
func backToBaseline(t testing.TB, base usage, what string) {
	t.Helper()
	var now usage
	deadline := time.Now().Add(15 * time.Second)
	for {
		now = measure()
		if now.goroutines <= base.goroutines+goroutineSlack || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%s: baseline %v; after %v", what, base, now)
	if now.goroutines > base.goroutines+goroutineSlack {
		buf := make([]byte, 1<<20)
		t.Errorf("%s: %d goroutines, baseline %d (+%d allowed); stacks:\n%s", what, now.goroutines, base.goroutines,
			goroutineSlack, buf[:runtime.Stack(buf, true)])
	}
	if now.heap > heapFactor*base.heap+heapSlack {
		t.Errorf("%s: live heap %d KiB, baseline %d KiB: not back", what, now.heap>>10, base.heap>>10)
	}
}
