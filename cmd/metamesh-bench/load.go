package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/protocols/dubbo"
)

// loadConfig is one run of the echo workload against one address.
type loadConfig struct {
	Addr      string // 127.0.0.1:port of the server or the proxy
	Interface string
	Method    string
	Reply     string // the server's reply prefix: a reply is Reply + name
	Conns     int
	Pipeline  int
	Payload   int // bytes of the name argument
	Warmup    time.Duration
	Duration  time.Duration
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
	tmpl, err := newRequestTemplate(cfg)
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
		conns = append(conns, newLoadConn(nc, tmpl, cfg.Pipeline, cfg.Reply, &phase))
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

// requestTemplate is one SayHello request frame whose ID and the first
// bytes of whose name argument (the tag) are patched for every request.
type requestTemplate struct {
	frame  []byte
	tagOff int    // offset of the tag in frame
	tagLen int    // the tag is the low tagLen hex digits of the request ID
	filler string // the rest of the name, after the tag
}

func newRequestTemplate(cfg loadConfig) (*requestTemplate, error) {
	tagLen := min(16, cfg.Payload)
	filler := make([]byte, cfg.Payload-tagLen)
	for i := range filler {
		filler[i] = 'a' + byte(i%26)
	}
	build := func(tagChar byte) []byte {
		name := make([]byte, 0, cfg.Payload)
		for range tagLen {
			name = append(name, tagChar)
		}
		return dubbo.AppendRequest(nil, dubbo.Request{
			TwoWay:  true,
			Service: cfg.Interface,
			Method:  cfg.Method,
			Args:    []string{string(append(name, filler...))},
			Attachments: []protocols.Header{
				{Key: "path", Value: cfg.Interface},
				{Key: "interface", Value: cfg.Interface},
			},
		})
	}
	// The tag sits where two frames differing only in it differ.
	a, b := build('0'), build('1')
	t := &requestTemplate{frame: a, tagLen: tagLen, filler: string(filler)}
	if len(a) != len(b) {
		return nil, errors.New("request template: tag changes the frame length")
	}
	t.tagOff = -1
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		if t.tagOff < 0 {
			t.tagOff = i
		}
		if i >= t.tagOff+tagLen {
			return nil, errors.New("request template: tag is not contiguous")
		}
	}
	if t.tagOff < 0 && tagLen > 0 {
		return nil, errors.New("request template: tag not found")
	}
	return t, nil
}

// appendRequest appends the request with ID id.
func (t *requestTemplate) appendRequest(dst []byte, id uint64) []byte {
	start := len(dst)
	dst = append(dst, t.frame...)
	putID(dst[start+4:start+12], id)
	if t.tagLen > 0 {
		putHex(dst[start+t.tagOff:start+t.tagOff+t.tagLen], id)
	}
	return dst
}

// checkName reports whether name is the name of request id.
func (t *requestTemplate) checkName(name string, id uint64) bool {
	if len(name) != t.tagLen+len(t.filler) || name[t.tagLen:] != t.filler {
		return false
	}
	var tag [16]byte
	putHex(tag[:t.tagLen], id)
	return name[:t.tagLen] == string(tag[:t.tagLen])
}

func putID(b []byte, id uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(id)
		id >>= 8
	}
}

// putHex writes the low len(b) hex digits of v into b.
func putHex(b []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
}
