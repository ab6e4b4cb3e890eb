// Package etcd is the etcd (v3 API) registry source, for the layout of
// dubbo-go's etcdv3 registry: one key per provider,
// ROOT/<interface>/providers/<URL-encoded provider URL>, held by the
// provider's lease. It lists the keys under ROOT, then watches them from
// the revision of the listing; a watch that breaks off (compaction, lost
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
	prefix := strings.TrimSuffix(s.target.Root, "/") + "/"
	for ctx.Err() == nil {
		rev, byIface, err := s.list(ctx, cli, prefix, sink)
		if err != nil {
			s.log.Warn("etcd listing failed; its last known providers stay in force", zap.Error(err))
			sink.Available(s.Name(), false)
			select {
			case <-ctx.Done():
			case <-time.After(retryDelay):
			}
			continue
		}
		sink.Available(s.Name(), true)
		s.watch(ctx, cli, prefix, rev, byIface, sink)
	}
	return nil
}

// list replaces the registry's view with the keys under prefix and
// returns the revision it read and the providers by interface and key.
func (s *Source) list(ctx context.Context, cli *clientv3.Client, prefix string, sink registry.Sink) (int64, map[string]map[string]registry.Provider, error) {
	lctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := cli.Get(lctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return 0, nil, err
	}
	byIface := map[string]map[string]registry.Provider{}
	all := map[string][]registry.Provider{}
	for _, kv := range resp.Kvs {
		if iface, p, ok := s.provider(prefix, string(kv.Key)); ok {
			set(byIface, iface)[string(kv.Key)] = p
			all[iface] = append(all[iface], p)
		}
	}
	sink.ReplaceAll(s.Name(), all)
	return resp.Header.Revision, byIface, nil
}

// watch applies the changes after rev to byIface (the providers listed at
// rev, by interface and key) and reports each changed interface, until
// the watch ends.
func (s *Source) watch(ctx context.Context, cli *clientv3.Client, prefix string, rev int64, byIface map[string]map[string]registry.Provider, sink registry.Sink) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if err := wr.Err(); err != nil {
			s.log.Info("etcd watch ended; listing again", zap.Error(err))
			return
		}
		touched := map[string]bool{}
		for _, ev := range wr.Events {
			key := string(ev.Kv.Key)
			iface, p, ok := s.provider(prefix, key)
			if !ok {
				continue
			}
			touched[iface] = true
			if ev.Type == clientv3.EventTypeDelete {
				delete(set(byIface, iface), key)
			} else {
				set(byIface, iface)[key] = p
			}
		}
		for iface := range touched {
			ps := make([]registry.Provider, 0, len(byIface[iface]))
			for _, p := range byIface[iface] {
				ps = append(ps, p)
			}
			sink.ReplaceInterface(s.Name(), iface, ps)
		}
	}
}

func set(m map[string]map[string]registry.Provider, iface string) map[string]registry.Provider {
	if m[iface] == nil {
		m[iface] = map[string]registry.Provider{}
	}
	return m[iface]
}

// provider parses a key ROOT/<interface>/providers/<node>.
func (s *Source) provider(prefix, key string) (string, registry.Provider, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", registry.Provider{}, false
	}
	iface, rest, ok := strings.Cut(rest, "/providers/")
	if !ok || iface == "" || strings.Contains(iface, "/") || rest == "" || strings.Contains(rest, "/") {
		return "", registry.Provider{}, false
	}
	p, err := registry.ParseProvider(rest)
	if err != nil {
		return "", registry.Provider{}, false
	}
	return iface, p, true
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
