package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// loadConfig is one run of a workload against one address.
type loadConfig struct {
	Addr     string // 127.0.0.1:port of the server or the proxy
	Work     *workload
	Reply    string // the server's reply prefix: a reply is Reply + argument
	Conns    int
	Pipeline int
	Payload  int // bytes of the string argument
	Warmup   time.Duration
	Duration time.Duration
	// OnMeasure runs when the measured window opens and closes (to sample
	// CPU counters): with true just before, with false just after.
	OnMeasure func(start bool)
}

// loadResult is what a run measured. Latency and OK count requests sent
// inside the measured window; Errors counts every wrong, failed or lost
// response of the whole run, warmup included.
type loadResult struct {
	Hist    *histogram
	OK      uint64
	Errors  uint64
	Elapsed time.Duration // length of the measured window
	Samples []string      // a few error messages
}

// Throughput is measured requests per second.
func (r *loadResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Run phases, read by every connection before each send.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseStop
)

// drainTimeout bounds how long a connection waits for its last responses
// once sending has stopped; they count as errors if they don't come.
const drainTimeout = 5 * time.Second

// runLoad dials cfg.Conns connections, keeps cfg.Pipeline requests in
// flight on each for Warmup+Duration, and collects the measured window.
// Cancelling ctx stops it early with ctx's error.
func runLoad(ctx context.Context, cfg loadConfig) (*loadResult, error) {
	if cfg.Conns < 1 || cfg.Pipeline < 1 || cfg.Payload < 0 {
		return nil, errors.New("conns and pipeline must be ≥ 1, payload ≥ 0")
	}
	tmpl, err := newRequestTemplate(cfg.Work, cfg.Payload)
	if err != nil {
		return nil, err
	}
	if uint64(cfg.Pipeline-1) > tmpl.maxID {
		return nil, fmt.Errorf("pipeline %d: more requests in flight than %s request IDs", cfg.Pipeline, cfg.Work.name)
	}
	codec, err := cfg.Work.newCodec()
	if err != nil {
		return nil, err
	}
	var phase atomic.Int32
	conns := make([]*loadConn, 0, cfg.Conns)
	defer func() {
		for _, c := range conns {
			c.nc.Close()
		}
	}()
	for range cfg.Conns {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		nc, err := d.DialContext(dctx, "tcp", cfg.Addr)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", cfg.Addr, err)
		}
		conns = append(conns, newLoadConn(nc, cfg.Work, codec, tmpl, cfg.Pipeline, cfg.Reply, &phase))
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(c.run)
	}
	res := &loadResult{Hist: newHistogram()}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	wait := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped: // every connection failed
			return nil
		}
	}
	err = wait(cfg.Warmup)
	if err == nil {
		if cfg.OnMeasure != nil {
			cfg.OnMeasure(true)
		}
		start := time.Now()
		phase.Store(phaseMeasure)
		err = wait(cfg.Duration)
		phase.Store(phaseStop)
		res.Elapsed = time.Since(start)
		if cfg.OnMeasure != nil {
			cfg.OnMeasure(false)
		}
	}
	phase.Store(phaseStop)
	deadline := time.Now().Add(drainTimeout)
	if err != nil {
		deadline = time.Now()
	}
	for _, c := range conns {
		_ = c.nc.SetReadDeadline(deadline)
	}
	<-stopped
	for _, c := range conns {
		res.Hist.Merge(c.hist)
		res.OK += c.ok
		res.Errors += c.errs
		if c.firstErr != "" && len(res.Samples) < 5 {
			res.Samples = append(res.Samples, c.firstErr)
		}
	}
	return res, err
}
