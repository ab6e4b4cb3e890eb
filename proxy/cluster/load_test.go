package cluster

import "testing"

func TestLoadMaxRequests(t *testing.T) {
	var l Load
	lim := Limits{MaxRequests: 2}
	for i := range 2 {
		if !l.Begin(lim) {
			t.Fatalf("request %d was refused under MaxRequests 2", i+1)
		}
	}
	if l.Begin(lim) {
		t.Fatal("a third request was admitted over MaxRequests 2")
	}
	l.End()
	if !l.Begin(lim) {
		t.Fatal("a request was refused after one ended")
	}
	if l.Active() != 2 {
		t.Fatalf("active = %d, want 2", l.Active())
	}
	var unlimited Load
	for range 1000 {
		if !unlimited.Begin(Limits{}) {
			t.Fatal("MaxRequests 0 refused a request")
		}
	}
}

func TestRetryBudget(t *testing.T) {
	var l Load
	// Quiet cluster: the floor (3 by default) applies.
	for i := range 3 {
		if !l.BeginRetry(Limits{}) {
			t.Fatalf("retry %d refused under the minimum concurrency", i)
		}
	}
	if l.BeginRetry(Limits{}) {
		t.Fatal("a 4th concurrent retry was admitted with nothing in flight")
	}
	// 100 requests in flight: 20% may be retries.
	for range 100 {
		l.Begin(Limits{})
	}
	n := 3
	for l.BeginRetry(Limits{}) {
		n++
	}
	if n != 20 {
		t.Fatalf("%d concurrent retries admitted with 100 in flight, want 20", n)
	}
	l.EndRetry()
	if !l.BeginRetry(Limits{}) {
		t.Fatal("a retry was refused after one ended")
	}
	if !l.BeginRetry(Limits{RetryBudgetPercent: 50}) {
		t.Fatal("a 50% budget refused the 21st retry of 100 requests")
	}
	var nilLoad *Load
	if !nilLoad.Begin(Limits{MaxRequests: 1}) || !nilLoad.BeginRetry(Limits{}) {
		t.Fatal("a nil Load refused")
	}
}
