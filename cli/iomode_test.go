package cli

import (
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// TestEventLoopsFlag: --event-loops takes 0 or more, and only with the
// epoll I/O mode; a bad value is refused naming the flag.
func TestEventLoopsFlag(t *testing.T) {
	for _, tc := range []struct {
		mode  proxy.IOMode
		loops int
		err   string
	}{
		{proxy.IOGoroutine, 0, ""},
		{proxy.IOGoroutine, 2, "--event-loops 2: only with --io-mode epoll"},
		{proxy.IOEpoll, -1, "--event-loops -1: must be 0"},
	} {
		f := ioModeFlag{mode: string(tc.mode), loops: tc.loops}
		err := f.apply(proxy.New(zap.NewNop(), metrics.NewProxy()))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s, %d loops: %v", tc.mode, tc.loops, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s, %d loops: err %v, want one containing %q", tc.mode, tc.loops, err, tc.err)
		}
	}
}
