package xds

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
)

// DefaultInflightBytes is Options.InflightBytes when zero.
const DefaultInflightBytes = 256 << 20

// firstWorkSlots bounds the delta streams doing their first work at
// once: reading what their proxies have, working out what they lack and
// sending it, until settled (docs/xds.md#push-storms). A stream waiting
// for a slot has read nothing, and gRPC holds at most a window (64 KiB)
// of its requests, so a reconnection storm is served a few streams at a
// time, each soon done, rather than all at once, each slowly and each
// holding its proxy's list of 22,000 names meanwhile.
const firstWorkSlots = 64

// firstWorkHold bounds how long a stream holds its slot: a proxy that
// never subscribes to every type must not keep it.
const firstWorkHold = 10 * time.Second

// slot is a stream's slot for its first work; release gives it back,
// once.
type slot struct {
	once  sync.Once
	sem   *semaphore.Weighted
	timer *time.Timer
}

// firstWork waits for a slot, given back by release or after
// firstWorkHold.
func (s *Server) firstWork(ctx context.Context) (*slot, error) {
	if err := s.firstWorkSlots.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	sl := &slot{sem: s.firstWorkSlots}
	sl.timer = time.AfterFunc(firstWorkHold, sl.release)
	return sl, nil
}

func (sl *slot) release() {
	sl.once.Do(func() {
		sl.timer.Stop()
		sl.sem.Release(1)
	})
}

// admissionHold bounds how long a stream holds its admission waiting for
// its proxy to answer: a proxy that never ACKs must not stall the others.
const admissionHold = 30 * time.Second

// admission bounds the bytes of responses sent and not yet answered
// (ACK or NACK) across all streams. The responses of shared tables and
// diffs are marshaled once (codec.go), but those made for one stream (a
// reconnecting proxy's diff) are its own until its proxy reads them, and
// sending far ahead of the proxies' answers only queues work
// (docs/xds.md#push-storms).
//
// A stream takes its admission, the bytes of the responses it is about
// to send (capped at the limit: a config larger than the limit goes
// alone), before sending them, and gives it back once its proxy has
// answered every response sent under it, or after admissionHold. A
// stream already holding admission sends without taking more: the proxy
// may be waiting for those very responses (a first sync is applied only
// when every type has come) before it answers the earlier ones.
type admission struct {
	sem   *semaphore.Weighted
	limit int64

	inflight prometheus.Gauge
	wait     prometheus.Histogram
}

func newAdmission(limit int64, m *metrics) *admission {
	return &admission{sem: semaphore.NewWeighted(limit), limit: limit, inflight: m.inflight, wait: m.admissionWait}
}

// acquire waits for n bytes of admission (at most the limit) and returns
// how many it took.
func (a *admission) acquire(ctx context.Context, n int64) (int64, error) {
	n = max(1, min(n, a.limit))
	start := time.Now()
	if err := a.sem.Acquire(ctx, n); err != nil {
		return 0, err
	}
	a.wait.Observe(time.Since(start).Seconds())
	a.inflight.Add(float64(n))
	return n, nil
}

// release gives back n bytes acquired.
func (a *admission) release(n int64) {
	a.inflight.Sub(float64(n))
	a.sem.Release(n)
}
