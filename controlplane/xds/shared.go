package xds

import (
	"context"
	"slices"
	"sync"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// sharedCache is the SnapshotCache with each state-of-the-world
// response's resources replaced by ones marshaled once per published
// version and shared by every stream.
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
// The SnapshotCache answers a stream's watches into a channel of the
// stream's relay (one per stream channel) rather than the stream's own;
// right after each call that may answer (CreateWatch, SetSnapshot), the
// relay passes the answers on, in the order the cache made them (ADS type
// order), dropping those of watches cancelled meanwhile. Passing them on
// in the calling goroutine keeps the SnapshotCache's guarantees: nothing
// reaches a stream after its watch was cancelled, and a stream sees one
// snapshot's types in order.
//
// Delta streams are served by the SnapshotCache unchanged.
type sharedCache struct {
	cachev3.SnapshotCache

	mu sync.RWMutex
	// sets are the marshaled resources by type URL and version: those of
	// the last publish and of the one before it (responses made just
	// before a publish may still be on their way).
	sets, previous map[string]map[string][]*anypb.Any

	relayMu sync.Mutex
	relays  map[string]map[chan cachev3.Response]*relay // by node ID, then stream channel
}

// relay carries the SnapshotCache's answers to one stream's watches.
type relay struct {
	node string
	out  chan cachev3.Response // the stream's
	in   chan cachev3.Response // the cache's: answers wait here for pump

	mu   sync.Mutex
	live map[*cachev3.Request]bool // the open watches, by request
}

// relayAnswers bounds the answers waiting in a relay between the cache's
// call that makes them and the pump that follows it: one per watch, and a
// stream has at most one open watch per type.
const relayAnswers = 32

func newSharedCache(c cachev3.SnapshotCache) *sharedCache {
	return &sharedCache{SnapshotCache: c, relays: map[string]map[chan cachev3.Response]*relay{}}
}

// publish makes ms the published resources (one set per type and version
// in force: one per distinct view).
func (c *sharedCache) publish(ms []marshaledResources) {
	sets := make(map[string]map[string][]*anypb.Any, len(typeNames))
	for _, m := range ms {
		all := make([]*anypb.Any, len(m.values))
		for i, v := range m.values {
			all[i] = &anypb.Any{TypeUrl: m.typeURL, Value: v}
		}
		if sets[m.typeURL] == nil {
			sets[m.typeURL] = map[string][]*anypb.Any{}
		}
		sets[m.typeURL][m.version] = all
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sets, c.previous = sets, c.sets
}

// resources returns the shared resources of a response of the given type
// and version returning the given resource names, or false if that
// version isn't held or the response holds only some of its resources.
// (In ADS mode the SnapshotCache answers only requests naming every
// resource of the type, so a response's names are all of its version's.)
func (c *sharedCache) resources(typeURL, version string, names map[string]string) ([]*anypb.Any, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, sets := range []map[string]map[string][]*anypb.Any{c.sets, c.previous} {
		if all, ok := sets[typeURL][version]; ok && version != "" && len(names) == len(all) {
			return all, true
		}
	}
	return nil, false
}

// CreateWatch opens the watch on the SnapshotCache through the stream's
// relay and passes on the answer if the cache made one at once.
func (c *sharedCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	r := c.relay(req.GetNode().GetId(), out)
	r.mu.Lock()
	r.live[req] = true
	r.mu.Unlock()
	cancelInner, err := c.SnapshotCache.CreateWatch(req, sub, r.in)
	if err != nil {
		c.close(r, req)
		return nil, err
	}
	c.pump(r)
	var once sync.Once
	return func() {
		once.Do(func() {
			c.close(r, req)
			if cancelInner != nil {
				cancelInner()
			}
		})
	}, nil
}

// SetSnapshot sets snap for node and passes on the answers it made.
func (c *sharedCache) SetSnapshot(ctx context.Context, node string, snap cachev3.ResourceSnapshot) error {
	err := c.SnapshotCache.SetSnapshot(ctx, node, snap)
	c.relayMu.Lock()
	rs := make([]*relay, 0, len(c.relays[node]))
	for _, r := range c.relays[node] {
		rs = append(rs, r)
	}
	c.relayMu.Unlock()
	for _, r := range rs {
		c.pump(r)
	}
	return err
}

// relay returns the relay of a stream's channel, made on first use.
func (c *sharedCache) relay(node string, out chan cachev3.Response) *relay {
	c.relayMu.Lock()
	defer c.relayMu.Unlock()
	byOut := c.relays[node]
	if byOut == nil {
		byOut = map[chan cachev3.Response]*relay{}
		c.relays[node] = byOut
	}
	r := byOut[out]
	if r == nil {
		r = &relay{node: node, out: out, in: make(chan cachev3.Response, relayAnswers), live: map[*cachev3.Request]bool{}}
		byOut[out] = r
	}
	return r
}

// close ends the watch of req on r: an answer to it still waiting is
// dropped. A relay left with no open watch is forgotten (the stream ended,
// or is between a request and its next watch).
func (c *sharedCache) close(r *relay, req *cachev3.Request) {
	r.mu.Lock()
	delete(r.live, req)
	idle := len(r.live) == 0
	r.mu.Unlock()
	if !idle {
		return
	}
	c.relayMu.Lock()
	defer c.relayMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.live) == 0 && c.relays[r.node][r.out] == r {
		delete(c.relays[r.node], r.out)
		if len(c.relays[r.node]) == 0 {
			delete(c.relays, r.node)
		}
	}
}

// pump passes the answers waiting in r to its stream, in order, with
// shared resources, dropping those of closed watches.
func (c *sharedCache) pump(r *relay) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		select {
		case resp := <-r.in:
			if r.live[resp.GetRequest()] {
				r.out <- c.share(resp)
			}
		default:
			return
		}
	}
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
