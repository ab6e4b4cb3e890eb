package cli

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// blocker is a runnable that runs until its context ends and counts how
// many are still running.
func blocker(running *atomic.Int32) runnable {
	running.Add(1)
	return func(ctx context.Context) error {
		defer running.Add(-1)
		<-ctx.Done()
		return nil
	}
}

// A runnable that fails stops the others; run returns once all have
// returned, with the error named.
func TestGroupStopsAllOnFailure(t *testing.T) {
	var running atomic.Int32
	broken := errors.New("broken")
	var g group
	g.add("a", blocker(&running))
	g.add("--b", func(context.Context) error { return broken })
	g.add("c", blocker(&running))
	err := g.run(context.Background())
	if !errors.Is(err, broken) || err.Error() != "--b: broken" {
		t.Fatalf("run returned %v, want --b: broken", err)
	}
	if n := running.Load(); n != 0 {
		t.Fatalf("%d runnables still running after run returned", n)
	}
}

// Ending the context (SIGTERM) stops every runnable, and run returns nil;
// a runnable that returned nil early had left the others running.
func TestGroupStopsAllWithContext(t *testing.T) {
	var running atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	early := make(chan struct{})
	var g group
	g.add("a", blocker(&running))
	g.add("early", func(context.Context) error { close(early); return nil })
	g.add("b", blocker(&running))
	done := make(chan error, 1)
	go func() { done <- g.run(ctx) }()
	<-early
	select {
	case err := <-done:
		t.Fatalf("run returned %v after a runnable returned nil", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v after the context ended", err)
	}
	if n := running.Load(); n != 0 {
		t.Fatalf("%d runnables still running after run returned", n)
	}
}

// A command one of whose runnables fails (its config folder can't be
// watched, an address is taken) returns that error, named by its flag,
// and its servers are closed when it returns.
func TestCommandsStopWhenOneRunnableFails(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		cmd, config, failing string
	}{
		{"run", missing, "--config"},
		{"controlplane", missing, "--config"},
		{"run", t.TempDir(), "--xds"},
		{"controlplane", t.TempDir(), "--admin"},
	} {
		t.Run(tc.cmd+" "+tc.failing, func(t *testing.T) {
			addrs := freeAddrs(t, 2)
			flags := map[string]string{"--admin": addrs[0], "--xds": addrs[1]}
			flags[tc.failing] = taken.Addr().String()
			cmd := Root()
			cmd.SetArgs([]string{tc.cmd, "--config", tc.config, "--admin", flags["--admin"], "--xds", flags["--xds"],
				"--insecure", "--listen-address", "127.0.0.1", "--log-level", "error"})
			done := make(chan error, 1)
			go func() { done <- cmd.ExecuteContext(context.Background()) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("the command kept running with a runnable failed")
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.failing+": ") {
				t.Fatalf("%s returned %v, want an error of %s", tc.cmd, err, tc.failing)
			}
			for _, addr := range addrs {
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					t.Errorf("%s still accepts connections after %s returned", addr, tc.cmd)
				}
			}
		})
	}
}
