package accesslog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// gate is a writer that blocks until opened.
type gate struct {
	open chan struct{}
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Write(p)
}

func (g *gate) Sync() error { return nil }

func (g *gate) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

func TestSlowWriterDropsNotBlocks(t *testing.T) {
	var dropped atomic.Int64
	g := &gate{open: make(chan struct{})}
	l := &Logger{sink: newSink(g, Text, func() { dropped.Add(1) }), perMillion: 1_000_000}
	const n = queueLen + 1000
	start := time.Now()
	for i := range n {
		l.Log(Entry{Time: time.Now(), Protocol: "dubbo", RequestID: uint64(i)})
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("logging %d lines to a stuck writer took %v", n, took)
	}
	// The writer holds one line, the queue queueLen: the rest are dropped.
	if d := dropped.Load(); d < n-queueLen-1 || d > n-queueLen {
		t.Fatalf("%d dropped, want about %d", d, n-queueLen)
	}
	close(g.open)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(g.String(), "\n") < n-int(dropped.Load()) {
		if time.Now().After(deadline) {
			t.Fatalf("%d lines written, want %d", strings.Count(g.String(), "\n"), n-int(dropped.Load()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(g.String(), "dubbo") {
		t.Fatalf("text lines lack the protocol: %q", g.String()[:200])
	}
}

func TestSample(t *testing.T) {
	var none *Logger
	if none.Sample() {
		t.Fatal("a nil logger sampled a request")
	}
	ss := NewSinks(func() {})
	half, err := ss.Logger("stderr", JSON, 50)
	if err != nil {
		t.Fatal(err)
	}
	hits := 0
	for range 10000 {
		if half.Sample() {
			hits++
		}
	}
	if hits < 4500 || hits > 5500 {
		t.Fatalf("%d of 10000 sampled at 50%%", hits)
	}
	if _, err := ss.Logger("stderr", JSON, 101); err == nil {
		t.Fatal("a share over 100% was accepted")
	}
	again, _ := ss.Logger("stderr", JSON, 1)
	if again.sink != half.sink {
		t.Fatal("the same destination got a second sink")
	}
}

var _ zapcore.WriteSyncer = (*gate)(nil)

// TestFlushWritesEveryQueuedLine: lines queued faster than they are
// written are all in the file once Flush returns (a proxy shutting down
// loses none).
func TestFlushWritesEveryQueuedLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	ss := NewSinks(func() { t.Error("a line was dropped") })
	l, err := ss.Logger(path, JSON, 100)
	if err != nil {
		t.Fatal(err)
	}
	const n = queueLen / 2
	for i := range n {
		l.Log(Entry{Time: time.Now(), Protocol: "redis", RequestID: uint64(i)})
	}
	if err := ss.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(data, []byte("\n")); got != n {
		t.Fatalf("%d lines in the file after Flush, want %d", got, n)
	}
}
