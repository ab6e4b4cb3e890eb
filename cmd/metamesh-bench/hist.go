package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram in the manner of
// HdrHistogram: values below 2^subBits nanoseconds get a bucket each, and
// every power of two above is split into 2^(subBits-1) equal buckets, so
// a reported value is within 1/2^(subBits-1) (0.8%) of the true one. It is
// not safe for concurrent use: each connection records into its own and
// the run merges them.
type histogram struct {
	counts   []uint64
	total    uint64
	min, max int64
	sum      float64
}

const (
	subBits    = 8
	subCount   = 1 << subBits     // buckets below the first doubling
	halfCount  = subCount / 2     // buckets per doubling above it
	maxExp     = 63 - subBits + 1 // shifts needed for the largest int64
	histBucket = subCount + maxExp*halfCount
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, histBucket), min: math.MaxInt64}
}

// bucketOf maps a non-negative value to its bucket.
func bucketOf(v int64) int {
	if v < subCount {
		return int(v)
	}
	// shift keeps the top subBits bits: v>>shift is in [halfCount, subCount).
	shift := bits.Len64(uint64(v)) - subBits
	return subCount + (shift-1)*halfCount + int(v>>shift) - halfCount
}

// bucketHigh is the largest value that maps to bucket b.
func bucketHigh(b int) int64 {
	if b < subCount {
		return int64(b)
	}
	shift := (b-subCount)/halfCount + 1
	sub := int64((b-subCount)%halfCount + halfCount)
	return (sub+1)<<shift - 1
}

// Record adds one value (negative values count as zero).
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// Merge adds every value recorded in o.
func (h *histogram) Merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of values recorded.
func (h *histogram) Count() uint64 { return h.total }

// Mean is the exact mean of the values recorded.
func (h *histogram) Mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.total))
}

// Max is the largest value recorded.
func (h *histogram) Max() time.Duration {
	if h.total == 0 {
		return 0
	}
	return time.Duration(h.max)
}

// Quantile returns the value at or below which a fraction q (0..1] of the
// values fall: the upper bound of the bucket holding the value of rank
// ceil(q*count), clamped to the recorded min and max.
func (h *histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketHigh(b), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
