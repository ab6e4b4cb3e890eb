package xds

import (
	"slices"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// sharedCache is the cache the state-of-the-world server watches: the
// SnapshotCache, with each response's resources replaced by ones
// marshaled once per published version and shared by every stream.
//
// The SnapshotCache marshals the resources of every response it makes,
// i.e. once per proxy: with 200 proxies and a 1.4 MB route set that is
// most of the control plane's CPU for a push (docs/xds.md). Every node
// here gets the same snapshot, whose resources publish has already
// marshaled to hash them, so the bytes are made once and only the small
// DiscoveryResponse around them is per stream. A response of a version
// no longer held (it raced a newer publish) keeps the SnapshotCache's own
// marshaling: slower, not different.
//
// Delta streams are served by the SnapshotCache unchanged.
type sharedCache struct {
	cachev3.SnapshotCache

	mu sync.RWMutex
	// sets are the marshaled resources by type URL: the published version
	// and the one before it (responses made just before a publish may
	// still be on their way).
	sets map[string]*[2]marshaledSet
}

// marshaledSet is one version of one type's resources, marshaled.
type marshaledSet struct {
	version string
	all     []*anypb.Any // in name order
}

func newSharedCache(c cachev3.SnapshotCache) *sharedCache {
	return &sharedCache{SnapshotCache: c, sets: map[string]*[2]marshaledSet{}}
}

// publish makes r the published version of its type's resources.
func (c *sharedCache) publish(r marshaledResources) {
	set := marshaledSet{version: r.version, all: make([]*anypb.Any, len(r.values))}
	for i, v := range r.values {
		set.all[i] = &anypb.Any{TypeUrl: r.typeURL, Value: v}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	held := c.sets[r.typeURL]
	switch {
	case held == nil:
		c.sets[r.typeURL] = &[2]marshaledSet{set}
	case held[0].version != r.version:
		held[0], held[1] = set, held[0]
	}
}

// resources returns the shared resources of a response of the given type
// and version returning the given resource names, or false if that
// version isn't held or the response holds only some of its resources.
// (In ADS mode the SnapshotCache answers only requests naming every
// resource of the type, so a response's names are all of its version's.)
func (c *sharedCache) resources(typeURL, version string, names map[string]string) ([]*anypb.Any, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, set := range c.sets[typeURL] {
		if set.version == version && version != "" && len(names) == len(set.all) {
			return set.all, true
		}
	}
	return nil, false
}

// CreateWatch watches the SnapshotCache and hands its response on with
// the shared resources. The SnapshotCache answers a watch at most once,
// into a channel of its own here (buffered, so it never waits for the
// stream), and a goroutine per watch passes the answer on until the watch
// is cancelled.
func (c *sharedCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	in := make(chan cachev3.Response, 1)
	cancelInner, err := c.SnapshotCache.CreateWatch(req, sub, in)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			close(done)
			if cancelInner != nil {
				cancelInner()
			}
		})
	}
	go func() {
		select {
		case resp := <-in:
			select {
			case out <- c.share(resp):
			case <-done:
			}
		case <-done:
		}
	}()
	return cancel, nil
}

// share returns resp with its resources replaced by the shared ones when
// this version is held.
func (c *sharedCache) share(resp cachev3.Response) cachev3.Response {
	raw, ok := resp.(*cachev3.RawResponse)
	if !ok || raw.Heartbeat {
		return resp
	}
	typeURL := raw.GetRequest().GetTypeUrl()
	res, ok := c.resources(typeURL, raw.GetResponseVersion(), raw.GetReturnedResources())
	if !ok {
		return resp
	}
	return &sharedResponse{RawResponse: raw, resources: res}
}

// sharedResponse is a SnapshotCache response whose resources were
// marshaled once for every stream.
type sharedResponse struct {
	*cachev3.RawResponse
	resources []*anypb.Any
}

// GetDiscoveryResponse returns a new response each call (the server sets
// its nonce), around the shared resources (which it only reads).
func (r *sharedResponse) GetDiscoveryResponse() (*discoveryv3.DiscoveryResponse, error) {
	return &discoveryv3.DiscoveryResponse{
		VersionInfo: r.GetResponseVersion(),
		Resources:   slices.Clip(r.resources),
		TypeUrl:     r.GetRequest().GetTypeUrl(),
	}, nil
}
