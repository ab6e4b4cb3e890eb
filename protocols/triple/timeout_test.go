package triple

import (
	"testing"
	"time"

	"github.com/metamesh/metamesh/protocols"
)

func TestRequestTimeout(t *testing.T) {
	c := &Codec{}
	for v, want := range map[string]time.Duration{
		"1H": time.Hour, "2M": 2 * time.Minute, "3S": 3 * time.Second, "250m": 250 * time.Millisecond,
		"99999999u": 99999999 * time.Microsecond, "7n": 7, "0m": 0,
		"99999999H": 1<<63 - 1, // beyond time.Duration: as long as it goes
		"":          0, "m": 0, "5": 0, "5x": 0, "-5m": 0, "123456789m": 0, "1.5S": 0,
	} {
		var m protocols.Message
		m.Headers.Add("grpc-timeout", v)
		if got := c.RequestTimeout(&m); got != want {
			t.Errorf("grpc-timeout %q = %v, want %v", v, got, want)
		}
	}
	if got := c.RequestTimeout(&protocols.Message{}); got != 0 {
		t.Errorf("no grpc-timeout = %v, want 0", got)
	}
}
