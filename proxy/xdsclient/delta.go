package xdsclient

import (
	"context"
	"fmt"
	"maps"
	"slices"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// resource is one resource received over delta, decoded, with its
// version.
type resource struct {
	version string
	msg     proto.Message
}

// delta runs one delta ADS stream until it breaks or ctx ends. served
// reports whether the control plane took the stream (which resets the
// backoff).
func (c *Client) delta(ctx context.Context) (served bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(c.conn).DeltaAggregatedResources(c.withToken(ctx))
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	clear(c.held) // answers to a broken stream's responses mean nothing on this one
	reqs := make([]*discoveryv3.DeltaDiscoveryRequest, len(subscribed))
	for i, t := range subscribed {
		// No names: a wildcard subscription. What we have (a
		// reconnection) is not sent again.
		reqs[i] = &discoveryv3.DeltaDiscoveryRequest{TypeUrl: t.url, InitialResourceVersions: versions(c.received[t.url])}
	}
	c.mu.Unlock()
	reqs[0].Node = c.node()
	if _, secrets := c.subscribeSecrets(); secrets != nil {
		reqs = append(reqs, secrets)
	}
	for _, req := range reqs {
		if err := st.Send(req); err != nil {
			return false, err
		}
	}
	// The control plane's headers: it took the stream (an up-to-date
	// proxy may get no response at all).
	if _, err := st.Header(); err != nil {
		return false, err
	}
	c.connected.Store(true)
	c.log.Info("connected to the control plane", zap.String("node", c.cfg.NodeID), zap.String("protocol", ProtocolDelta))
	for {
		resp, err := st.Recv()
		if err != nil {
			return true, err
		}
		if c.sds != nil && resp.GetTypeUrl() == resourcev3.SecretType {
			if err := st.Send(c.secretsDelta(resp)); err != nil {
				return true, err
			}
			continue
		}
		for _, req := range c.handleDelta(resp) {
			if err := st.Send(req); err != nil {
				return true, err
			}
		}
	}
}

// versions are the versions of have by name (nil if none).
func versions(have map[string]resource) map[string]string {
	if len(have) == 0 {
		return nil
	}
	out := make(map[string]string, len(have))
	for name, r := range have {
		out[name] = r.version
	}
	return out
}

// handleDelta merges one delta response into what was received and
// applies the result, returning the ACKs and NACKs to send. The control
// plane takes a response sent as had, ACKed or not, so the next one
// builds on it: a refused response's resources are kept (not applied)
// and retried with the next of its type. Until the first set is applied,
// responses are held unanswered until every type has come, then applied
// together.
func (c *Client) handleDelta(resp *discoveryv3.DeltaDiscoveryResponse) []*discoveryv3.DeltaDiscoveryRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := &update{typeURL: resp.GetTypeUrl(), version: resp.GetSystemVersionInfo(), nonce: resp.GetNonce()}
	have, err := merge(c.received[u.typeURL], resp)
	if err != nil {
		c.refused(u, err)
		return []*discoveryv3.DeltaDiscoveryRequest{deltaNack(u, err)}
	}
	u.resources = sorted(have)
	c.received[u.typeURL] = have
	c.receivedVersion[u.typeURL] = u.version
	c.held[u.typeURL] = u
	if !c.synced && len(c.received) < len(subscribed) {
		return nil
	}
	set := make(map[string]*update, len(subscribed))
	for _, t := range subscribed {
		switch {
		case c.held[t.url] != nil:
			set[t.url] = c.held[t.url]
		case c.synced:
			set[t.url] = c.accepted[t.url]
		default:
			set[t.url] = &update{typeURL: t.url, version: c.receivedVersion[t.url], resources: sorted(c.received[t.url])}
		}
	}
	err = c.apply(set)
	reqs := make([]*discoveryv3.DeltaDiscoveryRequest, 0, len(c.held))
	for _, t := range subscribed {
		h := c.held[t.url]
		switch {
		case h == nil:
		case err != nil:
			c.refused(h, err)
			reqs = append(reqs, deltaNack(h, err))
		default:
			c.applied(h)
			reqs = append(reqs, &discoveryv3.DeltaDiscoveryRequest{TypeUrl: t.url, ResponseNonce: h.nonce})
		}
	}
	clear(c.held)
	if err == nil {
		c.synced = true
		maps.Copy(c.accepted, set)
	}
	return reqs
}

// merge returns have with resp's resources added or replaced and its
// removed names deleted (have itself is not changed).
func merge(have map[string]resource, resp *discoveryv3.DeltaDiscoveryResponse) (map[string]resource, error) {
	if typeName(resp.GetTypeUrl()) == "" {
		return nil, fmt.Errorf("type %s was not subscribed to", resp.GetTypeUrl())
	}
	out := maps.Clone(have)
	if out == nil {
		out = map[string]resource{}
	}
	for i, r := range resp.GetResources() {
		a := r.GetResource()
		if a.GetTypeUrl() != resp.GetTypeUrl() {
			return nil, fmt.Errorf("resources[%d] (%s): type %s in a %s response", i, r.GetName(), a.GetTypeUrl(), resp.GetTypeUrl())
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("resources[%d] (%s): %w", i, r.GetName(), err)
		}
		out[r.GetName()] = resource{version: r.GetVersion(), msg: m}
	}
	for _, name := range resp.GetRemovedResources() {
		delete(out, name)
	}
	return out, nil
}

// sorted are have's messages in name order.
func sorted(have map[string]resource) []proto.Message {
	names := slices.Sorted(maps.Keys(have))
	out := make([]proto.Message, len(names))
	for i, n := range names {
		out[i] = have[n].msg
	}
	return out
}

// deltaNack refuses u.
func deltaNack(u *update, err error) *discoveryv3.DeltaDiscoveryRequest {
	return &discoveryv3.DeltaDiscoveryRequest{TypeUrl: u.typeURL, ResponseNonce: u.nonce, ErrorDetail: errorDetail(err)}
}
