package pipeline

import (
	"context"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/rest"

	"github.com/metamesh/metamesh/controlplane/file"
	"github.com/metamesh/metamesh/controlplane/kube"
	"github.com/metamesh/metamesh/controlplane/translate"
)

// Folder is the source of a config folder (controlplane/file): its
// objects at start, then after each change, with the file each was read
// from. A set a sink refused is a failed reload: the watcher logs it and
// tries the next change again.
func Folder(dir string, debounce time.Duration, log *zap.Logger) Source {
	return func(ctx context.Context, publish func(*Objects) error) error {
		return file.Watch(ctx, dir, debounce, log, func(cfg *file.Config) error {
			return publish(&Objects{Input: cfg.Input(), Origins: cfg.Sources})
		})
	}
}

// Kubernetes is the source of the cluster cfg points at
// (controlplane/kube), which also writes the objects' status. A set a
// sink refused is logged; the next change publishes again.
func Kubernetes(cfg *rest.Config, opts kube.Options) Source {
	return func(ctx context.Context, publish func(*Objects) error) error {
		return kube.Run(ctx, cfg, opts, func(in *translate.Input) {
			if err := publish(&Objects{Input: in}); err != nil {
				opts.Logger.Error(err, "config not applied")
			}
		})
	}
}
