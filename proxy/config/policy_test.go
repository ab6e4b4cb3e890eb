package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/config"
	"github.com/metamesh/metamesh/proxy/router"
)

func TestRoutePolicies(t *testing.T) {
	res := load(t)
	a := route(res, 3).GetRoute()
	a.Timeout = durationpb.New(2 * time.Second)
	a.RetryPolicy = &routev3.RetryPolicy{RetryOn: "connect-failure, unavailable", NumRetries: wrapperspb.UInt32(2), PerTryTimeout: durationpb.New(300 * time.Millisecond)}
	route(res, 2).GetRoute().RetryPolicy = &routev3.RetryPolicy{}
	snap, err := config.NewBuilder().Build(res)
	if err != nil {
		t.Fatal(err)
	}
	var got []*router.Route
	for _, rc := range res.Routes {
		vh := snap.Routes[rc.GetName()].Lookup(greetings)
		got = vh.Routes
	}
	if r := got[3]; r.Timeout != 2*time.Second || !r.HasPolicies() ||
		!reflect.DeepEqual(r.Retry, &router.RetryPolicy{Retries: 2, PerTryTimeout: 300 * time.Millisecond, On: router.RetryConnectFailure | router.RetryUnavailable}) {
		t.Errorf("route 3: timeout %v, retry %+v", r.Timeout, r.Retry)
	}
	// An empty retry policy is Envoy's default: one retry, on every
	// failure metamesh knows.
	if r := got[2]; r.Timeout != 0 || !reflect.DeepEqual(r.Retry, &router.RetryPolicy{Retries: 1, On: router.RetryConnectFailure | router.RetryReset | router.RetryUnavailable}) {
		t.Errorf("route 2: timeout %v, retry %+v", r.Timeout, r.Retry)
	}
	if got[0].HasPolicies() {
		t.Errorf("route 0 has no timeout or retries, HasPolicies = true")
	}
}

func TestClusterLimits(t *testing.T) {
	res := load(t)
	snap, err := config.NewBuilder().Build(res)
	if err != nil {
		t.Fatal(err)
	}
	c := snap.Clusters["greetings-v1"]
	want := cluster.Limits{MaxRequests: 1000, RetryBudgetPercent: 25, MinRetryConcurrency: 5}
	if c.MaxConnections != 4 || c.Limits != want || c.Load == nil {
		t.Errorf("greetings-v1: max connections %d, limits %+v, load %p; want 4, %+v, a load", c.MaxConnections, c.Limits, c.Load, want)
	}

	// The same cluster in the next snapshot counts on the same Load.
	b := config.NewBuilder()
	first, err := b.Build(res)
	if err != nil {
		t.Fatal(err)
	}
	b.Commit()
	second, err := b.Build(res)
	if err != nil {
		t.Fatal(err)
	}
	if first.Clusters["greetings-v1"].Load != second.Clusters["greetings-v1"].Load {
		t.Error("a rebuilt cluster got new counters: limits would reset on every config update")
	}

	bad := func(edit func(*clusterv3.CircuitBreakers_Thresholds), want string) {
		t.Helper()
		res := load(t)
		clusterNamed(t, res, "greetings-v1").CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{}}}
		edit(clusterNamed(t, res, "greetings-v1").CircuitBreakers.Thresholds[0])
		_, err := config.NewBuilder().Build(res)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build = %v, want an error naming %q", err, want)
		}
	}
	bad(func(th *clusterv3.CircuitBreakers_Thresholds) { th.MaxPendingRequests = wrapperspb.UInt32(5) },
		"cluster greetings-v1.circuit_breakers.thresholds[0].max_pending_requests")
	bad(func(th *clusterv3.CircuitBreakers_Thresholds) { th.Priority = corev3.RoutingPriority_HIGH },
		"thresholds[0].priority: only DEFAULT")
}

func TestClusterOutlierDetection(t *testing.T) {
	res := load(t)
	clusterNamed(t, res, "greetings-v1").OutlierDetection = &clusterv3.OutlierDetection{
		Consecutive_5Xx:    wrapperspb.UInt32(2),
		BaseEjectionTime:   durationpb.New(time.Second),
		MaxEjectionPercent: wrapperspb.UInt32(50),
	}
	snap, err := config.NewBuilder().Build(res)
	if err != nil {
		t.Fatal(err)
	}
	want := cluster.Outlier{ConsecutiveErrors: 2, Interval: 10 * time.Second, BaseEjectionTime: time.Second,
		MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 50}
	if got := snap.Clusters["greetings-v1"].Outlier; got == nil || *got != want {
		t.Errorf("outlier = %+v, want %+v", got, want)
	}
	if got := snap.Clusters["greetings-v2"].Outlier; got != nil {
		t.Errorf("greetings-v2 has no outlier_detection, got %+v", got)
	}
}

func TestRateLimitBucketsSurviveUpdates(t *testing.T) {
	limit := func(res *xdsapi.Resources, defaultMax uint32) {
		t.Helper()
		hour := durationpb.New(time.Hour)
		rl, err := anypb.New(&xdsapi.LocalRateLimit{
			TokenBucket: &xdsapi.TokenBucket{MaxTokens: defaultMax, FillInterval: hour},
			Conditions: []*xdsapi.RateLimitCondition{{
				Match:       []*xdsapi.AttributeMatch{{Name: "batchjob", Pattern: &xdsapi.AttributeMatch_Exact{Exact: "true"}}},
				TokenBucket: &xdsapi.TokenBucket{MaxTokens: 1, FillInterval: hour},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		res.Routes[0].GetVirtualHosts()[0].TypedPerFilterConfig = map[string]*anypb.Any{xdsapi.FilterName: rl}
	}
	var plain, batch protocols.Headers
	batch.Set("batchjob", "true")
	b := config.NewBuilder()
	next := func(res *xdsapi.Resources) *router.RateLimit {
		t.Helper()
		snap := build(t, b, res)
		b.Commit()
		return snap.Routes[res.Routes[0].GetName()].Lookup(greetings).RateLimit
	}

	res := load(t)
	limit(res, 2)
	rl := next(res)
	got := []bool{rl.Allow(&plain), rl.Allow(&plain), rl.Allow(&plain), rl.Allow(&batch), rl.Allow(&batch)}
	if want := []bool{true, true, false, true, false}; !reflect.DeepEqual(got, want) {
		t.Fatalf("a fresh limit of 2 (default) and 1 (batchjob) per hour admitted %v, want %v", got, want)
	}

	// A change elsewhere (here a cluster's connect timeout, as an endpoint
	// or another route would) keeps both buckets, drained.
	res = load(t)
	limit(res, 2)
	clusterNamed(t, res, "greetings-v1").ConnectTimeout = durationpb.New(3 * time.Second)
	rl = next(res)
	if rl.Allow(&plain) || rl.Allow(&batch) {
		t.Error("a config update elsewhere refilled the rate-limit buckets")
	}

	// A new shape for the default bucket makes it anew, full; the
	// condition's bucket, unchanged, stays drained.
	res = load(t)
	limit(res, 3)
	rl = next(res)
	if !rl.Allow(&plain) || rl.Allow(&batch) {
		t.Error("after the default bucket grew to 3: want it new and full, and the batchjob bucket still empty")
	}
}

// Two conditions matching the same requests keep a bucket each: the
// second (never reached) does not replace the first's on every update.
func TestRateLimitRepeatedConditionKeepsItsBucket(t *testing.T) {
	hour := durationpb.New(time.Hour)
	batchjob := []*xdsapi.AttributeMatch{{Name: "batchjob", Pattern: &xdsapi.AttributeMatch_Exact{Exact: "true"}}}
	rl, err := anypb.New(&xdsapi.LocalRateLimit{Conditions: []*xdsapi.RateLimitCondition{
		{Match: batchjob, TokenBucket: &xdsapi.TokenBucket{MaxTokens: 1, FillInterval: hour}},
		{Match: batchjob, TokenBucket: &xdsapi.TokenBucket{MaxTokens: 5, FillInterval: hour}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var batch protocols.Headers
	batch.Set("batchjob", "true")
	b := config.NewBuilder()
	for i := range 2 {
		res := load(t)
		res.Routes[0].GetVirtualHosts()[0].TypedPerFilterConfig = map[string]*anypb.Any{xdsapi.FilterName: rl}
		snap := build(t, b, res)
		b.Commit()
		lim := snap.Routes[res.Routes[0].GetName()].Lookup(greetings).RateLimit
		if i == 0 && (!lim.Allow(&batch) || lim.Allow(&batch)) {
			t.Fatal("the first condition's bucket of 1 did not admit exactly one request")
		}
		if i == 1 && lim.Allow(&batch) {
			t.Error("an update refilled the first condition's bucket")
		}
	}
}
