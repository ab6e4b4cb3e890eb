package main

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestHistogramQuantilesUniform(t *testing.T) {
	h := newHistogram()
	// 1µs, 2µs, ..., 10000µs: the value of rank r is r µs.
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 5000 * time.Microsecond},
		{0.9, 9000 * time.Microsecond},
		{0.99, 9900 * time.Microsecond},
		{0.999, 9990 * time.Microsecond},
		{0.0001, time.Microsecond},
		{1, 10000 * time.Microsecond},
	} {
		got := h.Quantile(tc.q)
		// A bucket's upper bound is at most 1/128 above its values.
		if got < tc.want || float64(got) > float64(tc.want)*(1+1.0/128) {
			t.Errorf("Quantile(%v) = %v, want %v (+0.8%%)", tc.q, got, tc.want)
		}
	}
	if h.Count() != 10000 {
		t.Errorf("Count = %d", h.Count())
	}
	if got, want := h.Mean(), 5000500*time.Nanosecond; got != want {
		t.Errorf("Mean = %v, want %v", got, want)
	}
	if h.Max() != 10*time.Millisecond {
		t.Errorf("Max = %v", h.Max())
	}
}

func TestHistogramSkewedAndExact(t *testing.T) {
	h := newHistogram()
	// 990 fast requests at 100ns (exact: below 256ns every value has a
	// bucket), 9 at 1ms, 1 at 1s.
	for range 990 {
		h.Record(100)
	}
	for range 9 {
		h.Record(time.Millisecond)
	}
	h.Record(time.Second)
	if got := h.Quantile(0.5); got != 100 {
		t.Errorf("p50 = %v, want 100ns", got)
	}
	if got := h.Quantile(0.99); got != 100 {
		t.Errorf("p99 = %v, want 100ns (rank 990)", got)
	}
	if got := h.Quantile(0.999); got < time.Millisecond || got > time.Millisecond*129/128 {
		t.Errorf("p999 = %v, want ~1ms", got)
	}
	// The top value is clamped to the exact max, not its bucket's bound.
	if got := h.Quantile(1); got != time.Second {
		t.Errorf("p100 = %v, want 1s", got)
	}
}

func TestHistogramMergeAndEmpty(t *testing.T) {
	empty := newHistogram()
	if empty.Quantile(0.99) != 0 || empty.Mean() != 0 || empty.Max() != 0 {
		t.Fatal("empty histogram reports non-zero values")
	}
	a, b := newHistogram(), newHistogram()
	for i := 1; i <= 500; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(500+i) * time.Millisecond)
	}
	a.Merge(b)
	a.Merge(empty)
	if a.Count() != 1000 || a.Max() != time.Second {
		t.Fatalf("merged count %d max %v", a.Count(), a.Max())
	}
	if got := a.Quantile(0.5); got < 500*time.Millisecond || got > 504*time.Millisecond {
		t.Errorf("merged p50 = %v, want ~500ms", got)
	}
	a.Record(-time.Second) // a clock step: counted as zero
	if a.Quantile(0.0001) != 0 {
		t.Errorf("negative value not counted as zero")
	}
}

// Every value falls inside its bucket, and buckets are at most 1/128 of
// their values wide.
func TestHistogramBuckets(t *testing.T) {
	check := func(v int64) {
		b := bucketOf(v)
		if b < 0 || b >= histBucket {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, b)
		}
		hi := bucketHigh(b)
		lo := int64(0)
		if b > 0 {
			lo = bucketHigh(b-1) + 1
		}
		if v < lo || v > hi {
			t.Fatalf("value %d outside its bucket %d [%d, %d]", v, b, lo, hi)
		}
		if v >= subCount && float64(hi-lo+1) > float64(lo)/128 {
			t.Fatalf("bucket %d [%d, %d] wider than 1/128", b, lo, hi)
		}
	}
	for v := int64(0); v < 5000; v++ {
		check(v)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		check(r.Int64N(1 << uint(r.IntN(63))))
	}
	check(1<<63 - 1)
}
