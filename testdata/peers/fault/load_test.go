package fault

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metamesh/metamesh/testdata/peers/dubboclient"
)

// load keeps callers calling SayHello through a dubbo-go client until
// stopped (or maxCalls each), and counts: a call succeeds when it gets its
// own reply, from whichever version.
type load struct {
	calls, failed atomic.Int64
	v1, v2        atomic.Int64
	stop          atomic.Bool
	wg            sync.WaitGroup

	mu       sync.Mutex
	examples []string
}

const maxCalls = 10_000_000 // per caller: a bound the loops never reach in a run

func startLoad(cl *dubboclient.Client, callers int) *load {
	l := &load{}
	for g := range callers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < maxCalls && !l.stop.Load(); i++ {
				name := fmt.Sprintf("load-%d-%d", g, i)
				got, err := cl.SayHello(context.Background(), name)
				l.calls.Add(1)
				version, rest, _ := strings.Cut(got, "|")
				if err != nil || rest != name {
					if l.failed.Add(1) <= 5 {
						l.mu.Lock()
						l.examples = append(l.examples, fmt.Sprintf("%s: %q, %v", name, got, err))
						l.mu.Unlock()
					}
					continue
				}
				switch version {
				case "v1":
					l.v1.Add(1)
				case "v2":
					l.v2.Add(1)
				}
			}
		}()
	}
	return l
}

// more waits until n more calls have been made.
func (l *load) more(t testing.TB, n int64, what string) {
	t.Helper()
	target := l.calls.Load() + n
	waitFor(t, 30*time.Second, fmt.Sprintf("%d more calls %s", n, what), func() bool { return l.calls.Load() >= target })
}

// finish stops the callers and waits for them.
func (l *load) finish() {
	l.stop.Store(true)
	l.wg.Wait()
}

func (l *load) String() string {
	return fmt.Sprintf("%d calls (%d from v1, %d from v2), %d failed", l.calls.Load(), l.v1.Load(), l.v2.Load(), l.failed.Load())
}

// check fails the test if any call failed.
func (l *load) check(t testing.TB, what string) {
	t.Helper()
	if n := l.failed.Load(); n > 0 {
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Errorf("%s: %d of %d calls failed; first ones:\n  %s", what, n, l.calls.Load(), strings.Join(l.examples, "\n  "))
	}
}

// replyFrom makes one call and returns the version that answered ("" on
// an error).
func replyFrom(cl *dubboclient.Client, name string) string {
	got, err := cl.SayHello(context.Background(), name)
	version, rest, _ := strings.Cut(got, "|")
	if err != nil || rest != name {
		return ""
	}
	return version
}
