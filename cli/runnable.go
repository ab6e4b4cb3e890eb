package cli

import (
	"context"
	"errors"
	"fmt"
)

// runnable is a long-running part of a command (controller-runtime's
// manager.Runnable is the model): it runs until ctx ends and then returns
// nil, or returns why it can't go on.
type runnable func(ctx context.Context) error

// group is a command's runnables, started and stopped together: nothing
// long-running starts before run, and nothing outlives it.
type group struct {
	names []string
	runs  []runnable
}

// add adds r, whose errors are named name (the flag that configures it,
// where there is one).
func (g *group) add(name string, r runnable) {
	g.names = append(g.names, name)
	g.runs = append(g.runs, r)
}

// run starts every runnable and returns once all have returned: after ctx
// ends (SIGTERM), or after one failed, which ends the others' context. It
// returns the errors of those that failed, each as "name: error" (nil when
// none did). A runnable that returns nil early leaves the others running.
func (g *group) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, len(g.runs))
	for i, r := range g.runs {
		go func() {
			err := r(ctx)
			if err != nil {
				err = fmt.Errorf("%s: %w", g.names[i], err)
				cancel()
			}
			done <- err
		}()
	}
	var errs []error
	for range g.runs {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
