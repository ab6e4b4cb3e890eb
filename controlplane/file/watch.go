package file

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// DefaultDebounce is how long the folder must stay quiet after a change
// before it is reloaded, so that a burst of writes (an editor's save, a
// `cp *.yaml`) is one reload.
const DefaultDebounce = 100 * time.Millisecond

// Result is the outcome of one reload.
type Result int

// Reload outcomes.
const (
	// ReloadOK: the config was valid, changed, and apply accepted it.
	ReloadOK Result = iota
	// ReloadUnchanged: the config was valid and equal to the one in force,
	// so apply was not called.
	ReloadUnchanged
	// ReloadInvalid: the folder had problems; the last good config stays.
	ReloadInvalid
	// ReloadApplyFailed: the config was valid but apply returned an error.
	ReloadApplyFailed
)

func (r Result) String() string {
	switch r {
	case ReloadOK:
		return "ok"
	case ReloadUnchanged:
		return "unchanged"
	case ReloadInvalid:
		return "invalid"
	case ReloadApplyFailed:
		return "apply_failed"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Stats counts reloads by outcome, the initial load included.
type Stats struct {
	OK, Unchanged, Invalid, ApplyFailed uint64
}

// Watcher loads a config folder, then reloads it on every change and hands
// each new valid config to Apply. Set the exported fields, then call Run.
type Watcher struct {
	// Dir is the config folder.
	Dir string
	// Debounce is the quiet time after a change before a reload
	// (DefaultDebounce if zero).
	Debounce time.Duration
	// Log receives one line per problem and per reload (nop if nil).
	Log *zap.Logger
	// Apply puts a new config in force. It is called from Run's goroutine,
	// one call at a time, only with a valid config that differs from the
	// last one it accepted; when it returns an error, the config in force
	// is whatever Apply left, and the next change is tried again.
	Apply func(*Config) error
	// OnReload, if set, is told each reload's outcome (for metrics).
	OnReload func(Result)

	applied                             *Config
	ok, unchanged, invalid, applyFailed atomic.Uint64
}

// Watch runs a Watcher on dir until ctx is done; see Watcher.Run.
func Watch(ctx context.Context, dir string, debounce time.Duration, log *zap.Logger, apply func(*Config) error) error {
	w := &Watcher{Dir: dir, Debounce: debounce, Log: log, Apply: apply}
	return w.Run(ctx)
}

// Stats returns the reload counters; safe to call from any goroutine.
func (w *Watcher) Stats() Stats {
	return Stats{OK: w.ok.Load(), Unchanged: w.unchanged.Load(), Invalid: w.invalid.Load(), ApplyFailed: w.applyFailed.Load()}
}

// Run loads the folder, applies it if valid (if not, it logs the problems
// and waits for a fix), then reloads on every change until ctx is done, when
// it returns nil. It returns an error only when the folder can't be read or
// watched at start; later, a folder that went away is logged like any
// invalid config.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Log == nil {
		w.Log = zap.NewNop()
	}
	debounce := w.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("file: watch %s: %w", w.Dir, err)
	}
	defer fsw.Close()
	// Watch before the first load, so a change made during it is seen. The
	// folder, not each file: editors that save by writing a temporary file
	// and renaming it over the old one replace the file being watched.
	if err := fsw.Add(w.Dir); err != nil {
		return fmt.Errorf("file: watch %s: %w", w.Dir, err)
	}
	cfg, problems, err := load(w.Dir, nil)
	if err != nil {
		return fmt.Errorf("file: read %s: %w", w.Dir, err)
	}
	w.reloaded(cfg, problems)

	dir := filepath.Clean(w.Dir)
	timer := time.NewTimer(debounce)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fsw.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) == dir && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
				w.Log.Error("config folder removed; the last good config stays in force and further changes are not seen",
					zap.String("dir", w.Dir))
			}
			if relevant(ev, dir) {
				// Measured from the last event: a burst is one reload.
				timer.Reset(debounce)
			}
		case err, ok := <-fsw.Errors:
			if !ok {
				return nil
			}
			w.Log.Warn("config folder watch error", zap.String("dir", w.Dir), zap.Error(err))
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost; reload to be sure.
				timer.Reset(debounce)
			}
		case <-timer.C:
			cfg, problems, err := load(w.Dir, w.applied)
			if err != nil {
				problems = Problems{{File: w.Dir, Reason: err.Error()}}
			}
			w.reloaded(cfg, problems)
		}
	}
}

// relevant reports whether ev may change the config: a config file was
// written, created, removed or renamed, or (a Kubernetes ConfigMap volume
// swapping its ..data symlink) a file whose name starts with "..".
// Attribute changes and other files (editor swap files) are ignored.
func relevant(ev fsnotify.Event, dir string) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	if filepath.Clean(ev.Name) == dir {
		return true
	}
	base := filepath.Base(ev.Name)
	return IsConfigFile(base) || strings.HasPrefix(base, "..")
}

// reloaded handles one load's result.
func (w *Watcher) reloaded(cfg *Config, problems Problems) {
	switch {
	case len(problems) > 0:
		for _, p := range problems {
			w.Log.Warn("config problem", zap.String("problem", p.String()), zap.String("file", p.File))
		}
		if w.applied == nil {
			w.Log.Warn("config rejected; no config is in force yet", zap.String("dir", w.Dir), zap.Int("problems", len(problems)))
		} else {
			w.Log.Warn("config rejected; the last good config stays in force", zap.String("dir", w.Dir), zap.Int("problems", len(problems)))
		}
		w.report(ReloadInvalid, &w.invalid)
	case w.applied != nil && reflect.DeepEqual(cfg, w.applied):
		w.Log.Debug("config unchanged", zap.String("dir", w.Dir))
		w.report(ReloadUnchanged, &w.unchanged)
	default:
		if err := w.Apply(cfg); err != nil {
			w.Log.Error("config not applied", zap.String("dir", w.Dir), zap.Error(err))
			w.report(ReloadApplyFailed, &w.applyFailed)
			return
		}
		w.applied = cfg
		w.Log.Info("config applied", zap.String("dir", w.Dir),
			zap.Int("serviceEntries", len(cfg.ServiceEntries)),
			zap.Int("destinationPolicies", len(cfg.DestinationPolicies)),
			zap.Int("metaRouters", len(cfg.MetaRouters)),
			zap.Int("applicationProtocols", len(cfg.ApplicationProtocols)),
			zap.Int("authorizationPolicies", len(cfg.AuthorizationPolicies)))
		w.report(ReloadOK, &w.ok)
	}
}

// report counts r last, so that whoever sees the count also sees the logs.
func (w *Watcher) report(r Result, counter *atomic.Uint64) {
	counter.Add(1)
	if w.OnReload != nil {
		w.OnReload(r)
	}
}
