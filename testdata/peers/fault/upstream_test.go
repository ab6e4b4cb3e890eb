package fault

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/metamesh/metamesh/proxy"
)

// call is one client call on a path: its outcome and, when wrong, why.
type call func(g, i int) (outcome, string)

// rig is one codec's setup for the upstream faults: a proxy with three
// routes, each behind its own upstream, used by the same real clients:
// good (a healthy real server), kill (a real server killed and restarted
// mid-load) and bad (faultServer).
type rig struct {
	srv      *proxy.Server
	listener string // the listener's name, for the connection counters
	fs       *faultServer
	// callers is how many goroutines call each path at once: each has its
	// own client connection where the client library needs one.
	callers         int
	good, kill, bad call
	killUpstream    func()
	restartUpstream func()
	// modes are the faults this codec's server plays.
	modes []mode
	test  string // the name of the test that started srv
}

// closedClientConns is how many client connections of the listener have
// ended: accepted minus open.
func (r *rig) closedClientConns() float64 {
	m := r.srv.Metrics()
	return testutil.ToFloat64(m.DownstreamCxT.WithLabelValues(r.listener)) - testutil.ToFloat64(m.DownstreamCx.WithLabelValues(r.listener))
}

// run plays every fault of r against live traffic on the healthy route.
// What a user expects, per fault: every call gets its own reply or a
// protocol-native error from the proxy (never another call's reply, never
// a client-side timeout or a broken connection); calls on the healthy
// route all get their own replies; no client connection is closed; the
// proxy's goroutines and heap come back to their baseline.
func (r *rig) run(t *testing.T) {
	r.test = t.Name()
	rounds := 1
	if *soakFor > 0 {
		rounds = 1 << 30 // bounded by the deadline below
	}
	deadline := time.Now().Add(*soakFor)
	// Every path works before any fault: the routes are what the test
	// thinks they are, and the fault server's own replies are right.
	for name, c := range map[string]call{"good": r.good, "kill": r.kill, "bad": r.bad} {
		var tl tally
		parallel(r.callers, 10, func(g, i int) { tl.add(c(g, i)) })
		if tl.own.Load() != int64(10*r.callers) {
			tl.check(t, "warm-up on the "+name+" route")
			t.Fatalf("warm-up on the %s route: %s, want every call its own reply", name, &tl)
		}
	}
	for round := 0; round < rounds && (round == 0 || time.Now().Before(deadline)); round++ {
		for _, m := range r.modes {
			t.Run(m.String(), func(t *testing.T) { r.fault(t, m) })
		}
		t.Run("killed mid-load and restarted", r.killed)
		if t.Failed() {
			return
		}
	}
}

// fault plays m on the bad route while the good route carries traffic.
func (r *rig) fault(t *testing.T, m mode) {
	base := measure(r.test)
	closedBefore := r.closedClientConns()
	reqsBefore := r.fs.requests.Load()
	r.fs.set(m)
	n := 25
	if m == modeSilent {
		n = 3 // each waits for the route timeout
	}
	var good, bad tally
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); parallel(r.callers, 50, func(g, i int) { good.add(r.good(g, i)) }) }()
	go func() { defer wg.Done(); parallel(r.callers, n, func(g, i int) { bad.add(r.bad(g, i)) }) }()
	wg.Wait()
	t.Logf("faulty route: %s; healthy route: %s; requests the fault server saw: %d", &bad, &good, r.fs.requests.Load()-reqsBefore)
	bad.check(t, "faulty route")
	if good.own.Load() != int64(50*r.callers) {
		t.Errorf("healthy route: %s, want all %d calls their own reply", &good, 50*r.callers)
	}
	if r.fs.requests.Load() == reqsBefore {
		t.Errorf("the fault server saw no request: the fault was not exercised")
	}
	switch m {
	case modeSilent, modeGarbage, modeHalf:
		// The calls can't have had their reply: each got the proxy's error.
		if bad.native.Load() != int64(n*r.callers) {
			t.Errorf("faulty route: %s, want all %d calls a native error", &bad, n*r.callers)
		}
	}
	if closed := r.closedClientConns() - closedBefore; closed != 0 {
		t.Errorf("%v client connections were closed", closed)
	}
	// Back to normal: the route recovers (the proxy reconnects as needed).
	r.fs.set(modeOK)
	waitFor(t, 15*time.Second, "the faulty route to answer again", func() bool {
		o, _ := r.bad(0, 1<<20)
		return o == own
	})
	r.fs.dropConns()
	backToBaseline(t, r.test, base, m.String())
}

// killed SIGKILLs the kill route's server while callers keep calling it,
// restarts it, and waits until its calls succeed again.
func (r *rig) killed(t *testing.T) {
	base := measure(r.test)
	closedBefore := r.closedClientConns()
	var good, kill tally
	var stop atomic.Bool
	var wg sync.WaitGroup
	const maxCalls = 100000 // per caller: the loop stops by itself
	wg.Add(2)
	go func() {
		defer wg.Done()
		parallel(r.callers, maxCalls, func(g, i int) {
			if !stop.Load() {
				good.add(r.good(g, i))
			}
		})
	}()
	go func() {
		defer wg.Done()
		parallel(r.callers, maxCalls, func(g, i int) {
			if !stop.Load() {
				kill.add(r.kill(g, i))
			}
		})
	}()
	func() {
		defer stop.Store(true)
		waitFor(t, 10*time.Second, "calls to the server to be killed", func() bool { return kill.own.Load() >= 50 })
		r.killUpstream()
		waitFor(t, 10*time.Second, "calls to the killed server to fail", func() bool { return kill.native.Load() > 0 })
		r.restartUpstream()
		restarted := kill.own.Load()
		waitFor(t, 20*time.Second, "calls to the restarted server to succeed", func() bool { return kill.own.Load() >= restarted+50 })
	}()
	wg.Wait()
	t.Logf("killed route: %s; healthy route: %s", &kill, &good)
	kill.check(t, "killed route")
	good.check(t, "healthy route")
	if good.native.Load() != 0 {
		t.Errorf("healthy route: %s, want no errors", &good)
	}
	if closed := r.closedClientConns() - closedBefore; closed != 0 {
		t.Errorf("%v client connections were closed", closed)
	}
	backToBaseline(t, r.test, base, "killed and restarted")
}
