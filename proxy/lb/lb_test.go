package lb_test

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/lb"
)

var policies = []string{lb.RoundRobin, lb.LeastRequest, lb.Random, lb.RingHash}

// endpoints returns one endpoint per weight, with hosts 10.0.0.i:20880.
func endpoints(weights ...uint32) []cluster.Endpoint {
	eps := make([]cluster.Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = cluster.Endpoint{Host: cluster.NewHost(fmt.Sprintf("10.0.0.%d:20880", i+1)), Weight: w}
	}
	return eps
}

func mustNew(t testing.TB, policy string, eps []cluster.Endpoint) cluster.Picker {
	t.Helper()
	p, err := lb.New(policy, eps)
	if err != nil {
		t.Fatalf("New(%s): %v", policy, err)
	}
	return p
}

// shares picks n times (with the given key function) and returns each
// endpoint's share of the picks in percent, in endpoint order.
func shares(t testing.TB, p cluster.Picker, eps []cluster.Endpoint, n int, key func(i int) (string, bool)) []float64 {
	t.Helper()
	index := map[*cluster.Host]int{}
	for i, e := range eps {
		index[e.Host] = i
	}
	counts := make([]int, len(eps))
	for i := range n {
		h := p.Pick(key(i))
		j, ok := index[h]
		if !ok {
			t.Fatalf("Pick returned %v, not one of the endpoints", h)
		}
		counts[j]++
	}
	out := make([]float64, len(eps))
	for i, c := range counts {
		out[i] = 100 * float64(c) / float64(n)
	}
	return out
}

func noKey(int) (string, bool) { return "", false }

func TestRoundRobinSmoothSchedule(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		want    string // one cycle, by host index
	}{
		{"2:1 interleaves", []uint32{2, 1}, "010"},
		{"1:2", []uint32{1, 2}, "101"},
		{"equal", []uint32{1, 1, 1}, "012"},
		{"5:1:1 nginx smooth", []uint32{5, 1, 1}, "0010200"},
		{"gcd reduced 200:100", []uint32{200, 100}, "010"},
		{"weight 0 is 1", []uint32{0, 1}, "01"},
		{"single host", []uint32{7}, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := endpoints(tt.weights...)
			p := mustNew(t, lb.RoundRobin, eps)
			index := map[*cluster.Host]byte{}
			for i, e := range eps {
				index[e.Host] = byte('0' + i)
			}
			// Three cycles: the schedule repeats exactly.
			var got strings.Builder
			for range 3 * len(tt.want) {
				got.WriteByte(index[p.Pick("", false)])
			}
			if want := strings.Repeat(tt.want, 3); got.String() != want {
				t.Errorf("schedule %s, want %s", got.String(), want)
			}
		})
	}
}

func TestRoundRobinProportions(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		cycle   int
	}{
		{"3:2:1", []uint32{3, 2, 1}, 6},
		{"2:1", []uint32{2, 1}, 3},
		{"10:7:3:1", []uint32{10, 7, 3, 1}, 21},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := endpoints(tt.weights...)
			p := mustNew(t, lb.RoundRobin, eps)
			// Every window of one cycle, wherever it starts, holds each
			// host exactly weight times.
			for start := range tt.cycle {
				counts := map[*cluster.Host]int{}
				for range tt.cycle {
					counts[p.Pick("", false)]++
				}
				for i, e := range eps {
					if counts[e.Host] != int(e.Weight) {
						t.Fatalf("window %d: host %d picked %d times, want %d", start, i, counts[e.Host], e.Weight)
					}
				}
				p.Pick("", false) // shift the window by one
			}
		})
	}
}

func TestRoundRobinLargeWeightsScaled(t *testing.T) {
	// 3000:1000:1000 sums above the schedule bound; proportions survive
	// the scaling and every host keeps at least one slot.
	eps := endpoints(300000, 100000, 100000, 1)
	p := mustNew(t, lb.RoundRobin, eps)
	got := shares(t, p, eps, 100_000, noKey)
	want := []float64{60, 20, 20, 0}
	for i := range want[:3] {
		if math.Abs(got[i]-want[i]) > 1 {
			t.Errorf("host %d: %.2f%%, want %.0f%% ± 1", i, got[i], want[i])
		}
	}
	if got[3] == 0 {
		t.Error("the weight-1 host is never picked; every host must keep a slot")
	}
}

func TestRandomWeighted(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
	}{
		{"3:1", []uint32{3, 1}},
		{"1:1:2", []uint32{1, 1, 2}},
		{"weight 0 is 1", []uint32{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := endpoints(tt.weights...)
			var total float64
			for _, w := range tt.weights {
				total += float64(max(w, 1))
			}
			got := shares(t, mustNew(t, lb.Random, eps), eps, 100_000, noKey)
			for i, w := range tt.weights {
				want := 100 * float64(max(w, 1)) / total
				if math.Abs(got[i]-want) > 2 {
					t.Errorf("host %d: %.2f%%, want %.1f%% ± 2", i, got[i], want)
				}
			}
		})
	}
}

func TestLeastRequestPrefersIdle(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		active  []int
		// maxBusy bounds the busy host's share; P2C still picks it when
		// both draws land on it: 1/n².
		maxBusy float64
	}{
		{"two hosts", []uint32{1, 1}, []int{50, 0}, 30},
		{"four hosts", []uint32{1, 1, 1, 1}, []int{50, 0, 0, 0}, 10},
		{"busy host with heavy weight still loses", []uint32{10, 1}, []int{50, 0}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := endpoints(tt.weights...)
			for i, n := range tt.active {
				for range n {
					eps[i].Host.Begin()
				}
			}
			p := mustNew(t, lb.LeastRequest, eps)
			got := shares(t, p, eps, 20_000, noKey)
			if got[0] > tt.maxBusy {
				t.Errorf("busy host got %.2f%% of picks, want ≤ %.0f%%", got[0], tt.maxBusy)
			}
			// Once the busy host's requests end, the hosts share evenly
			// (equal weights) again: the picker reads live counters.
			for range tt.active[0] {
				eps[0].Host.End()
			}
			if eps[0].Host.Active() != 0 {
				t.Fatalf("Active = %d after End", eps[0].Host.Active())
			}
			if tt.weights[0] != tt.weights[1] {
				return
			}
			got = shares(t, p, eps, 20_000, noKey)
			for i, s := range got {
				if want := 100 / float64(len(eps)); math.Abs(s-want) > 3 {
					t.Errorf("idle again: host %d got %.2f%%, want %.0f%% ± 3", i, s, want)
				}
			}
		})
	}
}

func TestLeastRequestWeighsActive(t *testing.T) {
	// Host 0 has weight 4 and 3 requests in flight, host 1 weight 1 and 1:
	// (3+1)/4 < (1+1)/1, so whenever both are drawn host 0 wins.
	eps := endpoints(4, 1)
	for range 3 {
		eps[0].Host.Begin()
	}
	eps[1].Host.Begin()
	got := shares(t, mustNew(t, lb.LeastRequest, eps), eps, 20_000, noKey)
	// Host 1 only when both draws are host 1: 25%.
	if got[1] > 30 {
		t.Errorf("host 1 got %.2f%%, want about 25%%", got[1])
	}
}

func keyOf(i int) (string, bool) { return "user-" + strconv.Itoa(i), true }

func TestRingHashSameKeySameHost(t *testing.T) {
	eps := endpoints(1, 1, 1, 1)
	p := mustNew(t, lb.RingHash, eps)
	// A second ring from equal endpoints (new Host values, same
	// addresses) maps every key the same way: the ring is by address.
	p2 := mustNew(t, lb.RingHash, endpoints(1, 1, 1, 1))
	for i := range 2000 {
		k, _ := keyOf(i)
		h := p.Pick(k, true)
		for range 3 {
			if again := p.Pick(k, true); again != h {
				t.Fatalf("key %s: %s then %s", k, h.Addr, again.Addr)
			}
		}
		if h2 := p2.Pick(k, true); h2.Addr != h.Addr {
			t.Fatalf("key %s: %s on one ring, %s on an equal one", k, h.Addr, h2.Addr)
		}
	}
}

func TestRingHashSpreadByWeight(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		tol     float64
	}{
		{"equal", []uint32{1, 1, 1, 1}, 8},
		{"1:3", []uint32{1, 3}, 8},
		{"1:1:2", []uint32{1, 1, 2}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := endpoints(tt.weights...)
			var total float64
			for _, w := range tt.weights {
				total += float64(w)
			}
			got := shares(t, mustNew(t, lb.RingHash, eps), eps, 40_000, keyOf)
			for i, w := range tt.weights {
				want := 100 * float64(w) / total
				if math.Abs(got[i]-want) > tt.tol {
					t.Errorf("host %d: %.2f%% of keys, want %.0f%% ± %.0f", i, got[i], want, tt.tol)
				}
			}
		})
	}
}

func TestRingHashRemoveHostMovesFewKeys(t *testing.T) {
	eps := endpoints(1, 1, 1, 1)
	before := mustNew(t, lb.RingHash, eps)
	removed := eps[2].Host
	after := mustNew(t, lb.RingHash, append(append([]cluster.Endpoint{}, eps[:2]...), eps[3:]...))
	const n = 20_000
	moved, fromRemoved := 0, 0
	for i := range n {
		k, _ := keyOf(i)
		a, b := before.Pick(k, true), after.Pick(k, true)
		if b == removed {
			t.Fatalf("key %s still goes to the removed host", k)
		}
		if a != b {
			moved++
			if a == removed {
				fromRemoved++
			}
		}
	}
	t.Logf("%d of %d keys moved, %d of them from the removed host", moved, n, fromRemoved)
	if frac := float64(moved) / n; frac >= 0.40 || frac < 0.15 {
		t.Errorf("%.1f%% of keys moved, want about 25%% (< 40%%)", 100*frac)
	}
}

func TestRingHashNoKey(t *testing.T) {
	eps := endpoints(1, 1, 1, 1)
	got := shares(t, mustNew(t, lb.RingHash, eps), eps, 4000, noKey)
	for i, s := range got {
		if s == 0 {
			t.Errorf("without a key host %d is never picked; want any host", i)
		}
	}
}

func TestNewErrors(t *testing.T) {
	for _, eps := range [][]cluster.Endpoint{endpoints(1), nil} {
		t.Run(fmt.Sprintf("%d endpoints", len(eps)), func(t *testing.T) {
			for _, policy := range []string{"MAGLEV", "CLUSTER_PROVIDED", "round_robin"} {
				p, err := lb.New(policy, eps)
				if err == nil {
					t.Errorf("New(%q) = %v, want an error", policy, p)
					continue
				}
				if !strings.Contains(err.Error(), "lb_policy") || !strings.Contains(err.Error(), policy) {
					t.Errorf("New(%q) error %q does not name lb_policy and the policy", policy, err)
				}
			}
		})
	}
}

func TestEmptyEndpoints(t *testing.T) {
	for _, policy := range append(policies, "") {
		t.Run(policy, func(t *testing.T) {
			for _, eps := range [][]cluster.Endpoint{nil, {}} {
				p := mustNew(t, policy, eps)
				if h := p.Pick("k", true); h != nil {
					t.Errorf("Pick with key = %v, want nil", h)
				}
				if h := p.Pick("", false); h != nil {
					t.Errorf("Pick without key = %v, want nil", h)
				}
			}
		})
	}
}

func TestWeightZeroIsOne(t *testing.T) {
	// All policies: weights 0 and 1 share evenly.
	for _, policy := range policies {
		t.Run(policy, func(t *testing.T) {
			eps := endpoints(0, 1)
			got := shares(t, mustNew(t, policy, eps), eps, 20_000, keyOf)
			for i, s := range got {
				if math.Abs(s-50) > 8 {
					t.Errorf("host %d: %.2f%%, want about 50%%", i, s)
				}
			}
			if eps[0].Weight != 0 {
				t.Error("New modified the caller's endpoints")
			}
		})
	}
}

func TestDefaultPolicyIsRoundRobin(t *testing.T) {
	eps := endpoints(2, 1)
	p := mustNew(t, "", eps)
	var got []*cluster.Host
	for range 3 {
		got = append(got, p.Pick("", false))
	}
	if got[0] != eps[0].Host || got[1] != eps[1].Host || got[2] != eps[0].Host {
		t.Errorf("empty policy does not pick round robin: %s %s %s", got[0].Addr, got[1].Addr, got[2].Addr)
	}
}

func TestSingleHost(t *testing.T) {
	for _, policy := range policies {
		t.Run(policy, func(t *testing.T) {
			eps := endpoints(3)
			p := mustNew(t, policy, eps)
			for i := range 10 {
				if h := p.Pick(keyOf(i)); h != eps[0].Host {
					t.Fatalf("Pick = %v, want the only host", h)
				}
			}
		})
	}
}

func TestRingHashHugeWeightsBounded(t *testing.T) {
	// Weights summing far beyond any sensible ring size must not build a
	// ring of billions of points; proportions still hold.
	eps := endpoints(3<<30, 1<<30)
	p := mustNew(t, lb.RingHash, eps)
	got := shares(t, p, eps, 20_000, keyOf)
	if math.Abs(got[0]-75) > 8 {
		t.Errorf("host 0: %.2f%% of keys, want 75%% ± 8", got[0])
	}
}
