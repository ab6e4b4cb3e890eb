package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func testLoad(w *workload, addr string, payload int) loadConfig {
	return loadConfig{
		Addr: addr, Work: w, Reply: "v1|",
		Conns: 4, Pipeline: 8, Payload: payload, Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond,
	}
}

// forEachWorkload runs test once per workload (one after the other: the
// tests check the length of the measured window).
func forEachWorkload(t *testing.T, test func(t *testing.T, w *workload)) {
	for _, w := range workloads {
		t.Run(w.name, func(t *testing.T) { test(t, w) })
	}
}

func TestLoadAgainstEcho(t *testing.T) {
	forEachWorkload(t, func(t *testing.T, w *workload) {
		// 0 and 5 bytes: a tag only; 40000: a string hessian writes in two chunks.
		for _, payload := range []int{0, 5, 64, 1000, 40000} {
			e := startEcho(t, w, &echoServer{})
			cfg := testLoad(w, e.addr(), payload)
			var marks []bool
			cfg.OnMeasure = func(start bool) { marks = append(marks, start) }
			res, err := runLoad(t.Context(), cfg)
			if err != nil {
				t.Fatalf("payload %d: %v", payload, err)
			}
			if res.Errors != 0 || res.OK == 0 {
				t.Fatalf("payload %d: %d ok, %d errors: %v", payload, res.OK, res.Errors, res.Samples)
			}
			if res.Hist.Count() != res.OK {
				t.Errorf("payload %d: histogram holds %d values for %d requests", payload, res.Hist.Count(), res.OK)
			}
			// Warmup requests are answered but not measured.
			if uint64(e.requests.Load()) <= res.OK {
				t.Errorf("payload %d: server saw %d requests, measured %d", payload, e.requests.Load(), res.OK)
			}
			// The window is never shorter than asked; the generous upper
			// bound only catches a load that doesn't stop by itself (a busy
			// machine stretches it).
			if res.Elapsed < cfg.Duration || res.Elapsed > cfg.Duration+5*time.Second {
				t.Errorf("payload %d: measured window %v for %v", payload, res.Elapsed, cfg.Duration)
			}
			if len(marks) != 2 || !marks[0] || marks[1] {
				t.Errorf("payload %d: OnMeasure calls %v", payload, marks)
			}
		}
	})
}

func TestLoadCountsWrongReplies(t *testing.T) {
	forEachWorkload(t, func(t *testing.T, w *workload) {
		e := startEcho(t, w, &echoServer{corrupt: 50})
		res, err := runLoad(t.Context(), testLoad(w, e.addr(), 64))
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors == 0 || res.OK == 0 {
			t.Fatalf("%d ok, %d errors", res.OK, res.Errors)
		}
		if len(res.Samples) == 0 || !strings.Contains(res.Samples[0], "does not echo") {
			t.Errorf("samples %v", res.Samples)
		}
	})
}

func TestLoadCountsLostRequests(t *testing.T) {
	forEachWorkload(t, func(t *testing.T, w *workload) {
		e := startEcho(t, w, &echoServer{closeAt: 20})
		res, err := runLoad(t.Context(), testLoad(w, e.addr(), 64))
		if err != nil {
			t.Fatal(err)
		}
		// Each of the 4 connections dies with its 8 requests in flight.
		if res.Errors != 4*8 {
			t.Errorf("%d errors, want 32: %v", res.Errors, res.Samples)
		}
		if len(res.Samples) == 0 || !strings.Contains(res.Samples[0], "requests lost") {
			t.Errorf("samples %v", res.Samples)
		}
	})
}

func TestLoadStopsOnCancel(t *testing.T) {
	forEachWorkload(t, func(t *testing.T, w *workload) {
		e := startEcho(t, w, &echoServer{})
		cfg := testLoad(w, e.addr(), 64)
		cfg.Duration = time.Hour
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := runLoad(ctx, cfg); err == nil {
			t.Fatal("no error after cancel")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("stopped after %v", d)
		}
	})
}
