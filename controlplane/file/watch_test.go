package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Waits are polls up to a generous deadline; they end as soon as the
// condition holds, so a healthy run takes a few debounce periods.
const (
	deadline = 5 * time.Second
	debounce = 50 * time.Millisecond
)

// watched is a Watcher running on a temp folder, recording what it applies.
type watched struct {
	t    *testing.T
	dir  string
	w    *Watcher
	logs *observer.ObservedLogs

	mu       sync.Mutex
	applied  []*Config
	applyErr error // returned by the next apply
	results  []Result
}

// watch writes files to a temp folder and starts a Watcher on it; the
// watcher stops, and is checked to return nil, when the test ends.
func watch(t *testing.T, files map[string]string) *watched {
	t.Helper()
	return watchWith(t, files, debounce)
}

// watchWith is watch with the given debounce.
func watchWith(t *testing.T, files map[string]string, debounce time.Duration) *watched {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	x := &watched{t: t, dir: t.TempDir(), logs: logs}
	writeFiles(t, x.dir, files)
	x.w = &Watcher{
		Dir:      x.dir,
		Debounce: debounce,
		Log:      zap.New(core),
		Apply: func(c *Config) error {
			x.mu.Lock()
			defer x.mu.Unlock()
			x.applied = append(x.applied, c)
			err := x.applyErr
			x.applyErr = nil
			return err
		},
		OnReload: func(r Result) {
			x.mu.Lock()
			defer x.mu.Unlock()
			x.results = append(x.results, r)
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(deadline):
			t.Errorf("Run did not return after cancel")
		}
	})
	return x
}

// waitFor polls until cond holds.
func (x *watched) waitFor(what string, cond func() bool) {
	x.t.Helper()
	for end := time.Now().Add(deadline); !cond(); {
		if time.Now().After(end) {
			x.t.Fatalf("timed out waiting for %s; stats %+v, %d applies", what, x.w.Stats(), x.applies())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (x *watched) applies() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.applied)
}

func (x *watched) last() *Config {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.applied[len(x.applied)-1]
}

// waitApplies waits for the nth apply call and for its reload to be
// counted (Stats are updated after apply returns).
func (x *watched) waitApplies(n int) {
	x.t.Helper()
	x.waitFor("apply call "+strconv.Itoa(n), func() bool {
		s := x.w.Stats()
		return x.applies() >= n && s.OK+s.ApplyFailed >= uint64(x.applies())
	})
}

// write replaces name's content atomically (a temporary file renamed over
// it), as editors and config tools do: a plain rewrite truncates the file
// first, and a reload between the truncation and the write would read it
// empty (on a loaded machine the debounce does not always cover that gap).
func (x *watched) write(name, content string) {
	x.t.Helper()
	tmp := filepath.Join(x.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		x.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(x.dir, name)); err != nil {
		x.t.Fatal(err)
	}
}

// canary returns the weights of the canary route of the MetaRouter in cfg.
func canary(t *testing.T, cfg *Config) (int32, int32) {
	t.Helper()
	if len(cfg.MetaRouters) != 1 {
		t.Fatalf("config has %d MetaRouters, want 1", len(cfg.MetaRouters))
	}
	r := cfg.MetaRouters[0].Spec.Routes[1].Route
	return *r[0].Weight, *r[1].Weight
}

func TestWatchApplies(t *testing.T) {
	base := map[string]string{"se.yaml": serviceEntry, "mr.yaml": metaRouter(80, 20)}
	for _, tc := range []struct {
		name  string
		edit  func(x *watched)
		check func(t *testing.T, cfg *Config)
	}{{
		name: "write in place",
		edit: func(x *watched) { x.write("mr.yaml", metaRouter(50, 50)) },
		check: func(t *testing.T, cfg *Config) {
			if v1, v2 := canary(t, cfg); v1 != 50 || v2 != 50 {
				t.Errorf("weights %d/%d, want 50/50", v1, v2)
			}
		},
	}, {
		name: "rename over",
		edit: func(x *watched) {
			x.write(".mr.yaml.tmp", metaRouter(30, 70))
			if err := os.Rename(filepath.Join(x.dir, ".mr.yaml.tmp"), filepath.Join(x.dir, "mr.yaml")); err != nil {
				x.t.Fatal(err)
			}
		},
		check: func(t *testing.T, cfg *Config) {
			if v1, v2 := canary(t, cfg); v1 != 30 || v2 != 70 {
				t.Errorf("weights %d/%d, want 30/70", v1, v2)
			}
		},
	}, {
		name: "file removed",
		edit: func(x *watched) {
			if err := os.Remove(filepath.Join(x.dir, "mr.yaml")); err != nil {
				x.t.Fatal(err)
			}
		},
		check: func(t *testing.T, cfg *Config) {
			if len(cfg.MetaRouters) != 0 || len(cfg.ServiceEntries) != 1 {
				t.Errorf("config has %d MetaRouters and %d ServiceEntries, want 0 and 1", len(cfg.MetaRouters), len(cfg.ServiceEntries))
			}
		},
	}, {
		name: "file added",
		edit: func(x *watched) { x.write("dp.yml", destinationPolicy) },
		check: func(t *testing.T, cfg *Config) {
			if len(cfg.DestinationPolicies) != 1 || cfg.Sources["DestinationPolicy/default/demo"] != "dp.yml" {
				t.Errorf("config has %d DestinationPolicies, sources %v; want the new one from dp.yml", len(cfg.DestinationPolicies), cfg.Sources)
			}
		},
	}, {
		name: "file renamed away from .yaml",
		edit: func(x *watched) {
			if err := os.Rename(filepath.Join(x.dir, "mr.yaml"), filepath.Join(x.dir, "mr.yaml.off")); err != nil {
				x.t.Fatal(err)
			}
		},
		check: func(t *testing.T, cfg *Config) {
			if len(cfg.MetaRouters) != 0 {
				t.Errorf("config has %d MetaRouters, want 0", len(cfg.MetaRouters))
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			x := watch(t, base)
			x.waitApplies(1)
			if v1, v2 := canary(t, x.last()); v1 != 80 || v2 != 20 {
				t.Fatalf("initial weights %d/%d, want 80/20", v1, v2)
			}
			tc.edit(x)
			x.waitApplies(2)
			tc.check(t, x.last())
		})
	}
}

func TestWatchBurstIsOneReload(t *testing.T) {
	// A debounce long enough that the burst fits in it even on a machine
	// busy with other test suites (at 50 ms a slow write split it, and at
	// 1 s once in a make test beside four other engineers' builds).
	x := watchWith(t, map[string]string{"se.yaml": serviceEntry, "mr.yaml": metaRouter(50, 50)}, 3*time.Second)
	x.waitApplies(1)
	for i := 1; i <= 20; i++ {
		x.write("mr.yaml", metaRouter(100-i, i))
	}
	x.waitApplies(2)
	if v1, v2 := canary(t, x.last()); v1 != 80 || v2 != 20 {
		// 100-20 / 20: the last write of the burst.
		t.Errorf("after the burst: weights %d/%d, want 80/20", v1, v2)
	}
	// A later edit is one more reload; had the burst been more than one
	// (even one that found nothing changed), the count would show it.
	x.write("mr.yaml", metaRouter(60, 40))
	x.waitApplies(3)
	if got, want := x.w.Stats(), (Stats{OK: 3}); got != want {
		t.Errorf("Stats() = %+v, want %+v: the burst of 20 writes was not one reload", got, want)
	}
}

func TestWatchInvalidEditKeepsLastGood(t *testing.T) {
	x := watch(t, map[string]string{"se.yaml": serviceEntry, "mr.yaml": metaRouter(80, 20)})
	x.waitApplies(1)
	good := x.last()

	x.write("mr.yaml", metaRouter(80, 30))
	x.waitFor("the invalid reload", func() bool { return x.w.Stats().Invalid == 1 })
	if n := x.applies(); n != 1 {
		t.Fatalf("apply called %d times after an invalid edit, want 1 (the initial one)", n)
	}
	if x.last() != good {
		t.Fatalf("the last applied config changed")
	}
	problems := x.logs.FilterMessage("config problem").All()
	if len(problems) != 1 || problems[0].Level != zapcore.WarnLevel ||
		!strings.HasPrefix(problems[0].ContextMap()["problem"].(string), "mr.yaml:MetaRouter/demo: spec.routes[1].route: ") {
		t.Errorf("want one warning naming the field, got %+v", problems)
	}
	if x.logs.FilterMessage("config rejected; the last good config stays in force").Len() != 1 {
		t.Errorf("want the rejection logged")
	}

	// Back to the config in force: nothing to apply.
	x.write("mr.yaml", metaRouter(80, 20))
	x.waitFor("the unchanged reload", func() bool { return x.w.Stats().Unchanged == 1 })

	x.write("mr.yaml", metaRouter(60, 40))
	x.waitApplies(2)
	if v1, v2 := canary(t, x.last()); v1 != 60 || v2 != 40 {
		t.Errorf("after a valid edit: weights %d/%d, want 60/40", v1, v2)
	}
	if got, want := x.w.Stats(), (Stats{OK: 2, Unchanged: 1, Invalid: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	x.mu.Lock()
	results := x.results
	x.mu.Unlock()
	if want := []Result{ReloadOK, ReloadInvalid, ReloadUnchanged, ReloadOK}; !equalResults(results, want) {
		t.Errorf("OnReload saw %v, want %v", results, want)
	}
}

func equalResults(a, b []Result) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWatchStartsInvalid(t *testing.T) {
	x := watch(t, map[string]string{"mr.yaml": metaRouter(1, 2)})
	x.waitFor("the initial invalid load", func() bool { return x.w.Stats().Invalid == 1 })
	if n := x.applies(); n != 0 {
		t.Fatalf("apply called %d times with an invalid config", n)
	}
	if x.logs.FilterMessage("config rejected; no config is in force yet").Len() != 1 {
		t.Errorf("want the rejection logged")
	}
	x.write("mr.yaml", metaRouter(1, 99))
	x.waitApplies(1)
}

func TestWatchApplyError(t *testing.T) {
	x := watch(t, map[string]string{"mr.yaml": metaRouter(80, 20)})
	x.waitApplies(1)
	x.mu.Lock()
	x.applyErr = errors.New("proxy refused")
	x.mu.Unlock()

	x.write("mr.yaml", metaRouter(50, 50))
	x.waitFor("the failed apply", func() bool { return x.w.Stats().ApplyFailed == 1 })
	if e := x.logs.FilterMessage("config not applied").All(); len(e) != 1 || e[0].ContextMap()["error"] != "proxy refused" {
		t.Errorf("want the apply error logged, got %+v", e)
	}
	// The same content again is tried again: it never was in force.
	x.write("mr.yaml", metaRouter(50, 50))
	x.waitApplies(3)
	if got, want := x.w.Stats(), (Stats{OK: 2, ApplyFailed: 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestWatchUnreadableFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	w := &Watcher{Dir: dir, Debounce: debounce, Log: zap.NewNop(), Apply: func(*Config) error {
		t.Error("apply called")
		return nil
	}}
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Run(missing) = %v, want an error naming the folder", err)
	}
}

func TestWatchConfigMapSwap(t *testing.T) {
	// A Kubernetes ConfigMap volume updates by writing a new timestamped
	// folder and renaming a ..data_tmp symlink over ..data; the visible
	// files are symlinks through ..data and never change themselves.
	x := watch(t, map[string]string{"..v1/mr.yaml": metaRouter(80, 20), "..v2/mr.yaml": metaRouter(10, 90)})
	for _, l := range [][2]string{{"..v1", "..data"}, {filepath.Join("..data", "mr.yaml"), "mr.yaml"}, {"..v2", "..data_tmp"}} {
		if err := os.Symlink(l[0], filepath.Join(x.dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	// The watcher may have started before the symlinks existed.
	x.waitFor("the initial apply with the MetaRouter", func() bool {
		return x.applies() > 0 && len(x.last().MetaRouters) == 1
	})
	n := x.applies()
	if err := os.Rename(filepath.Join(x.dir, "..data_tmp"), filepath.Join(x.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	x.waitApplies(n + 1)
	if v1, v2 := canary(t, x.last()); v1 != 10 || v2 != 90 {
		t.Errorf("after the swap: weights %d/%d, want 10/90", v1, v2)
	}
}
