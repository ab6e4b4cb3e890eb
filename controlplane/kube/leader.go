package kube

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// elector campaigns for the status-writing Lease for as long as the
// manager runs. Unlike controller-runtime's own leader election, which ends
// the process when the lease is lost, losing it here only stops status
// writes: this replica keeps serving xDS and campaigns again.
type elector struct{ le *leaderelection.LeaderElector }

func newElector(cfg *rest.Config, opts *Options, w *statusWriter) (*elector, error) {
	// A hung request must not outlast the renew deadline.
	c := rest.CopyConfig(cfg)
	c.Timeout = max(time.Second, opts.RenewDeadline/2)
	client, err := coordinationv1.NewForConfig(rest.AddUserAgent(c, "metamesh-leader-election"))
	if err != nil {
		return nil, fmt.Errorf("kube: leader election client: %w", err)
	}
	log := opts.Logger.WithValues("lease", opts.LeaderElectionNamespace+"/"+opts.LeaderElectionID, "identity", opts.Identity)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: opts.LeaderElectionNamespace, Name: opts.LeaderElectionID},
			Client:     client,
			LockConfig: resourcelock.ResourceLockConfig{Identity: opts.Identity},
		},
		LeaseDuration:   opts.LeaseDuration,
		RenewDeadline:   opts.RenewDeadline,
		RetryPeriod:     opts.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            opts.LeaderElectionID,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				log.Info("leading: writing status")
				w.setLeading(true)
			},
			OnStoppedLeading: func() {
				log.Info("not leading: status writes stopped")
				w.setLeading(false)
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("kube: leader election: %w", err)
	}
	return &elector{le: le}, nil
}

// Start campaigns until ctx is done; a lost lease is campaigned for again.
func (e *elector) Start(ctx context.Context) error {
	for ctx.Err() == nil {
		e.le.Run(ctx)
	}
	return nil
}

// NeedLeaderElection tells the manager to run the elector on every replica.
func (e *elector) NeedLeaderElection() bool { return false }
