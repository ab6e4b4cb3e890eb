package router

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// RetryOn is a set of failures a request may be retried on.
type RetryOn uint8

// The retryable failures.
const (
	// RetryConnectFailure: no connection to the host could be made, so
	// the request was never sent.
	RetryConnectFailure RetryOn = 1 << iota
	// RetryReset: the upstream connection closed before the reply, or a
	// try timed out.
	RetryReset
	// RetryUnavailable: the server replied that it is overloaded or not
	// ready (the codec says which replies those are).
	RetryUnavailable
)

var retryOnNames = map[string]RetryOn{
	"connect-failure": RetryConnectFailure,
	"reset":           RetryReset,
	"unavailable":     RetryUnavailable,
}

// ParseRetryOn reads a comma-separated list of retryable failures, as in
// Envoy's retry_on: connect-failure, reset, unavailable.
func ParseRetryOn(s string) (RetryOn, error) {
	var on RetryOn
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		bit, ok := retryOnNames[name]
		if !ok {
			return 0, fmt.Errorf("%q is not connect-failure, reset or unavailable", name)
		}
		on |= bit
	}
	return on, nil
}

// RetryPolicy says when and how often a failed try is sent again.
type RetryPolicy struct {
	// Retries is the most tries after the first.
	Retries int
	// PerTryTimeout bounds each try (0: only the route's timeout).
	PerTryTimeout time.Duration
	// On is the failures retried.
	On RetryOn
}

// Mirror copies a share of a route's requests to another cluster, fire
// and forget: the copy's reply is discarded and never delays or fails the
// request itself.
type Mirror struct {
	Cluster string
	// PerMillion is the share of requests copied, in millionths.
	PerMillion uint32
}

// Sample reports whether this request is copied.
func (m *Mirror) Sample() bool {
	return m.PerMillion >= 1_000_000 || rand.Uint32N(1_000_000) < m.PerMillion
}
