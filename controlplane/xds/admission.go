package xds

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
)

// DefaultInflightBytes is Options.InflightBytes when zero.
const DefaultInflightBytes = 256 << 20

// firstWorkSlots bounds the delta streams doing their first work at
// once (deltaStream.flush).
const firstWorkSlots = 64

// admissionHold bounds how long a stream holds its admission waiting for
// its proxy to answer: a proxy that never ACKs must not stall the others.
const admissionHold = 30 * time.Second

// admission bounds the bytes of responses sent and not yet answered
// (ACK or NACK) across all streams. Each response is marshaled for its
// stream by gRPC and held in its buffers until the proxy reads it, so
// 2,000 proxies reconnecting at once would otherwise each hold a full
// copy of the config at the same time (docs/xds.md).
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
