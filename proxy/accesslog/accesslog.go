// Package accesslog writes the proxy's access log: one structured line per
// request, through zap, from a background writer so the data path never
// waits on a slow disk or pipe (a line that finds the queue full is
// dropped and counted instead).
package accesslog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Entry is one request's line.
type Entry struct {
	Time      time.Time
	Listener  string
	Protocol  string
	Service   string
	Method    string
	Route     string
	Cluster   string
	Upstream  string
	Status    string
	Duration  time.Duration
	ReqBytes  int
	RespBytes int
	RequestID uint64
	Client    string
}

// Format is how lines are written.
type Format int

// The formats.
const (
	JSON Format = iota
	Text
)

// queueLen bounds the lines waiting for the writer.
const queueLen = 8192

// Sink is one destination (a file or a standard stream in one format)
// and its writer goroutine. Sinks live as long as the process: listeners
// come and go, the file stays open.
type Sink struct {
	ch      chan Entry
	flush   chan chan struct{}
	log     *zap.Logger
	dropped func()
}

// newSink starts the writer of lines to w.
func newSink(w zapcore.WriteSyncer, f Format, dropped func()) *Sink {
	// No TimeKey: the line's time is the request's arrival (a field), not
	// when the writer got to it. Durations are milliseconds with their
	// fraction: most requests through a proxy take less than one.
	cfg := zapcore.EncoderConfig{
		MessageKey: "msg", LineEnding: zapcore.DefaultLineEnding,
		EncodeTime: zapcore.RFC3339NanoTimeEncoder, EncodeDuration: millis,
	}
	var enc zapcore.Encoder = zapcore.NewJSONEncoder(cfg)
	if f == Text {
		enc = zapcore.NewConsoleEncoder(cfg)
	}
	s := &Sink{ch: make(chan Entry, queueLen), flush: make(chan chan struct{}), log: zap.New(zapcore.NewCore(enc, w, zapcore.InfoLevel)), dropped: dropped}
	go s.run()
	return s
}

// millis encodes a duration as milliseconds, fraction included.
func millis(d time.Duration, enc zapcore.PrimitiveArrayEncoder) {
	enc.AppendFloat64(float64(d) / float64(time.Millisecond))
}

// run writes queued lines; asked to flush, it writes every line queued so
// far, syncs the destination and says so.
func (s *Sink) run() {
	for {
		select {
		case e := <-s.ch:
			s.write(e)
		case done := <-s.flush:
			s.drain()
			_ = s.log.Sync()
			close(done)
		}
	}
}

// drain writes the lines queued now.
func (s *Sink) drain() {
	for {
		select {
		case e := <-s.ch:
			s.write(e)
		default:
			return
		}
	}
}

func (s *Sink) write(e Entry) {
	s.log.Info("request",
		zap.Time("time", e.Time), // the request's arrival, not the write
		zap.String("listener", e.Listener), zap.String("protocol", e.Protocol),
		zap.String("service", e.Service), zap.String("method", e.Method),
		zap.String("route", e.Route), zap.String("cluster", e.Cluster),
		zap.String("upstream", e.Upstream), zap.String("status", e.Status),
		zap.Duration("duration", e.Duration), zap.Int("request_bytes", e.ReqBytes),
		zap.Int("response_bytes", e.RespBytes), zap.Uint64("request_id", e.RequestID),
		zap.String("client", e.Client))
}

// Flush writes every line queued so far to its destination and syncs it
// (a proxy shutting down calls it once its requests are done, so no
// logged request is lost), giving up when ctx ends.
func (ss *Sinks) Flush(ctx context.Context) error {
	if ss == nil {
		return nil
	}
	ss.mu.Lock()
	sinks := make([]*Sink, 0, len(ss.sinks))
	for _, s := range ss.sinks {
		sinks = append(sinks, s)
	}
	ss.mu.Unlock()
	for _, s := range sinks {
		done := make(chan struct{})
		select {
		case s.flush <- done:
		case <-ctx.Done():
			return fmt.Errorf("access log flush: %w", ctx.Err())
		}
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("access log flush: %w", ctx.Err())
		}
	}
	return nil
}

// Logger is a listener's access log: a sink and which requests go to it.
type Logger struct {
	sink *Sink
	// perMillion is the share of requests logged.
	perMillion uint32
}

// Sample reports whether this request is logged.
func (l *Logger) Sample() bool {
	return l != nil && (l.perMillion >= 1_000_000 || rand.Uint32N(1_000_000) < l.perMillion)
}

// Log queues e, or drops and counts it when the writer is behind.
func (l *Logger) Log(e Entry) {
	select {
	case l.sink.ch <- e:
	default:
		l.sink.dropped()
	}
}

// Sinks opens and keeps the sinks of a process, one per (path, format).
type Sinks struct {
	mu      sync.Mutex
	sinks   map[string]*Sink
	dropped func()
}

// NewSinks returns an empty set; dropped is called for each dropped line.
func NewSinks(dropped func()) *Sinks {
	return &Sinks{sinks: map[string]*Sink{}, dropped: dropped}
}

// Logger returns a logger writing sharePercent of the requests (0 to 100)
// to path ("" or "stdout", "stderr", or a file appended to) in f.
func (ss *Sinks) Logger(path string, f Format, sharePercent float64) (*Logger, error) {
	if sharePercent < 0 || sharePercent > 100 {
		return nil, fmt.Errorf("sample percent %v is not in 0..100", sharePercent)
	}
	key := fmt.Sprintf("%d:%s", f, path)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.sinks[key]
	if !ok {
		var w zapcore.WriteSyncer
		switch path {
		case "", "stdout":
			w = zapcore.AddSync(os.Stdout)
		case "stderr":
			w = zapcore.AddSync(os.Stderr)
		default:
			file, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return nil, err
			}
			w = file
		}
		s = newSink(w, f, ss.dropped)
		ss.sinks[key] = s
	}
	return &Logger{sink: s, perMillion: uint32(sharePercent * 10_000)}, nil
}
