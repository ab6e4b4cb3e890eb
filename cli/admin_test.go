package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/metamesh/metamesh/proxy"
	"github.com/metamesh/metamesh/proxy/admin"
	"github.com/metamesh/metamesh/proxy/metrics"
)

// A proxy whose admin address is not loopback says so at startup; one on
// loopback doesn't.
func TestAdminNotLoopbackWarns(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{
		{"127.0.0.1:0", false},
		{"0.0.0.0:0", true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			log := zap.New(core)
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // start, then drain at once
			if err := serve(ctx, log, proxy.New(log, metrics.NewProxy()), tc.addr, admin.Options{}, time.Second); err != nil {
				t.Fatal(err)
			}
			warned := false
			for _, e := range logs.All() {
				warned = warned || strings.HasPrefix(e.Message, "ADMIN ADDRESS IS NOT LOOPBACK")
			}
			if warned != tc.warn {
				t.Fatalf("admin on %s: warned %v, want %v (logs: %v)", tc.addr, warned, tc.warn, logs.All())
			}
		})
	}
}
