package triple

import (
	"time"

	"github.com/metamesh/metamesh/protocols"
)

// RequestTimeout is the timeout a call carries in its grpc-timeout header
// (1 to 8 digits and a unit: H, M, S, m, u, n), which the proxy uses when
// it is smaller than the route's; 0 when the header is absent or
// malformed (a malformed one is forwarded as it is, for the upstream to
// judge).
func (c *Codec) RequestTimeout(req *protocols.Message) time.Duration {
	v, ok := req.Headers.Get("grpc-timeout")
	if !ok {
		return 0
	}
	return parseTimeout(v)
}

func parseTimeout(v string) time.Duration {
	if len(v) < 2 || len(v) > 9 {
		return 0
	}
	var n int64
	for _, ch := range []byte(v[:len(v)-1]) {
		if ch < '0' || ch > '9' {
			return 0
		}
		n = n*10 + int64(ch-'0')
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0
	}
	if n > int64(1<<63-1)/int64(unit) {
		return 1<<63 - 1
	}
	return time.Duration(n) * unit
}

var _ protocols.Deadliner = (*Codec)(nil)
