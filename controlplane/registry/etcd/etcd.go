// Package etcd is the etcd (v3 API) registry source, for dubbo-go's etcdv3
// layout: one key per provider, ROOT/<interface>/providers/<URL-encoded
// provider URL>, and for application-level registration the mappings
// ROOT/mapping/<interface> and one key per instance,
// /services/<application>/<ip:port>, whose value carries the application's
// metadata; each provider's and instance's key is held by its lease. It
// lists both prefixes in one transaction, then watches them from the
// revision of the listing; a watch that breaks off (compaction, lost
// leader) lists again.
package etcd

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/connectivity"

	"github.com/metamesh/metamesh/controlplane/registry"
)

// requestTimeout bounds one listing.
const requestTimeout = 5 * time.Second

// retryDelay is the wait before listing again after a failure.
const retryDelay = time.Second

// ServicesPrefix is where dubbo-go registers application instances in etcd,
// whatever the registry's ROOT.
const ServicesPrefix = "/services/"

// Source watches one etcd cluster. Build it with New.
type Source struct {
	target registry.Target
	log    *zap.Logger
}

// New makes the source of an etcd:// target.
func New(t registry.Target, log *zap.Logger) (*Source, error) {
	if t.Scheme != "etcd" {
		return nil, fmt.Errorf("etcd: %s is not an etcd:// registry", t.URL)
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Source{target: t, log: log.With(zap.String("registry", t.URL))}, nil
}

// Name implements registry.Source.
func (s *Source) Name() string { return s.target.URL }

// Run implements registry.Source.
func (s *Source) Run(ctx context.Context, sink registry.Sink) error {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   s.target.Hosts,
		DialTimeout: requestTimeout,
		Context:     ctx,
		// Its retries while the cluster is down are not news.
		Logger: s.log.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
	})
	if err != nil {
		return fmt.Errorf("etcd: %s: %w", s.target.URL, err)
	}
	defer cli.Close()
	go s.reportConnectivity(ctx, cli, sink)
	prefixes := []string{strings.TrimSuffix(s.target.Root, "/") + "/"}
	if prefixes[0] != ServicesPrefix {
		prefixes = append(prefixes, ServicesPrefix)
	}
	for ctx.Err() == nil {
		v := newView(prefixes[0], s.log)
		rev, err := s.list(ctx, cli, prefixes, v)
		if err != nil {
			s.log.Warn("etcd listing failed; its last known providers stay in force", zap.Error(err))
			sink.Available(s.Name(), false)
			select {
			case <-ctx.Done():
			case <-time.After(retryDelay):
			}
			continue
		}
		sink.ReplaceAll(s.Name(), v.index.All())
		sink.Available(s.Name(), true)
		s.watch(ctx, cli, prefixes, rev, v, sink)
	}
	return nil
}

// list reads every key under the prefixes into v, in one transaction, and
// returns the revision it read.
func (s *Source) list(ctx context.Context, cli *clientv3.Client, prefixes []string, v *view) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	ops := make([]clientv3.Op, len(prefixes))
	for i, p := range prefixes {
		ops[i] = clientv3.OpGet(p, clientv3.WithPrefix())
	}
	resp, err := cli.Txn(lctx).Then(ops...).Commit()
	if err != nil {
		return 0, err
	}
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			v.apply(string(kv.Key), kv.Value, false)
		}
	}
	return resp.Header.Revision, nil
}

// watch applies the changes after rev to v and reports each interface
// they touch, until a watch ends.
func (s *Source) watch(ctx context.Context, cli *clientv3.Client, prefixes []string, rev int64, v *view, sink registry.Sink) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	merged := make(chan clientv3.WatchResponse)
	for _, p := range prefixes {
		go func() {
			for wr := range cli.Watch(wctx, p, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
				select {
				case merged <- wr:
				case <-wctx.Done():
					return
				}
			}
			// The watch ended without an error response (its context
			// ended, or the client closed): end the other one too.
			cancel()
		}()
	}
	for {
		var wr clientv3.WatchResponse
		select {
		case <-wctx.Done():
			return
		case wr = <-merged:
		}
		if err := wr.Err(); err != nil {
			s.log.Info("etcd watch ended; listing again", zap.Error(err))
			return
		}
		touched := map[string]bool{}
		for _, ev := range wr.Events {
			for _, iface := range v.apply(string(ev.Kv.Key), ev.Kv.Value, ev.Type == clientv3.EventTypeDelete) {
				touched[iface] = true
			}
		}
		for iface := range touched {
			sink.ReplaceInterface(s.Name(), iface, v.index.Providers(iface))
		}
	}
}

// reportConnectivity flags the registry unavailable while the client's
// connection is down (the watch resumes by itself when it is back).
func (s *Source) reportConnectivity(ctx context.Context, cli *clientv3.Client, sink registry.Sink) {
	conn := cli.ActiveConnection()
	state := conn.GetState()
	for conn.WaitForStateChange(ctx, state) {
		was := state
		state = conn.GetState()
		switch {
		case state == connectivity.TransientFailure && was != connectivity.TransientFailure:
			sink.Available(s.Name(), false)
		case state == connectivity.Ready && was != connectivity.Ready:
			sink.Available(s.Name(), true)
		}
	}
}

var _ registry.Source = (*Source)(nil)
