package xdsclient

import (
	"context"
	"sort"
	"strings"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"go.uber.org/zap"
)

// sotw runs one state-of-the-world ADS stream until it breaks or ctx
// ends. served reports whether the control plane took the stream (which
// resets the backoff).
func (c *Client) sotw(ctx context.Context) (served bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(c.conn).StreamAggregatedResources(c.withToken(ctx))
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	have := c.acceptedCopy()
	c.mu.Unlock()
	node := c.node()
	for i, t := range subscribed {
		// No resource names: a wildcard subscription. The version we have
		// lets the control plane skip what we are up to date with.
		req := &discoveryv3.DiscoveryRequest{TypeUrl: t.url}
		if u := have[t.url]; u != nil {
			req.VersionInfo = u.version
		}
		if i == 0 {
			req.Node = node
		}
		if err := st.Send(req); err != nil {
			return false, err
		}
	}
	if secrets, _ := c.subscribeSecrets(); secrets != nil {
		if err := st.Send(secrets); err != nil {
			return false, err
		}
	}
	pending := map[string]*update{} // the first sync's responses, by type URL
	// The control plane's headers: it took the stream (an up-to-date
	// proxy may get no response at all).
	if _, err := st.Header(); err != nil {
		return false, err
	}
	c.connected.Store(true)
	c.log.Info("connected to the control plane", zap.String("node", c.cfg.NodeID), zap.String("protocol", ProtocolSotw))
	for {
		resp, err := st.Recv()
		if err != nil {
			return true, err
		}
		if c.sds != nil && resp.GetTypeUrl() == resourcev3.SecretType {
			if err := st.Send(c.secretsSotw(resp)); err != nil {
				return true, err
			}
			continue
		}
		for _, req := range c.handle(resp, pending) {
			if err := st.Send(req); err != nil {
				return true, err
			}
		}
	}
}

// handle applies one response and returns the ACKs and NACKs to send.
// Until the first complete set is applied, responses are held in pending
// until every type has one, then applied together.
func (c *Client) handle(resp *discoveryv3.DiscoveryResponse, pending map[string]*update) []*discoveryv3.DiscoveryRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	u, err := decode(resp)
	if err != nil {
		bad := &update{typeURL: resp.GetTypeUrl(), version: resp.GetVersionInfo(), nonce: resp.GetNonce()}
		return []*discoveryv3.DiscoveryRequest{c.nack(bad, err)}
	}
	if c.synced {
		set := c.acceptedCopy()
		set[u.typeURL] = u
		if err := c.apply(set); err != nil {
			return []*discoveryv3.DiscoveryRequest{c.nack(u, err)}
		}
		c.accepted[u.typeURL] = u
		return []*discoveryv3.DiscoveryRequest{c.ack(u)}
	}
	pending[u.typeURL] = u
	if len(pending) < len(subscribed) {
		return nil
	}
	err = c.apply(pending)
	var reqs []*discoveryv3.DiscoveryRequest
	for _, t := range subscribed {
		p := pending[t.url]
		if err != nil {
			reqs = append(reqs, c.nack(p, err))
			continue
		}
		c.accepted[t.url] = p
		reqs = append(reqs, c.ack(p))
	}
	if err == nil {
		c.synced = true
		clear(pending)
	}
	return reqs
}

// apply hands the set to Config.Apply, with the clusters its routes still
// use kept from the set in force (keepInUse).
func (c *Client) apply(set map[string]*update) error {
	res, err := resources(set)
	if err != nil {
		return err
	}
	if kept := keepInUse(res, c.inForce); len(kept) > 0 {
		c.log.Debug("clusters removed by the control plane kept until the routes stop using them", zap.Strings("clusters", kept))
	}
	// /config_dump shows the version of every type in force.
	names := make([]string, 0, len(set))
	for url, u := range set {
		names = append(names, typeName(url)+"="+u.version)
	}
	sort.Strings(names)
	res.Version = strings.Join(names, " ")
	if err := c.cfg.Apply(res); err != nil {
		return err
	}
	c.inForce = res
	return nil
}

func (c *Client) ack(u *update) *discoveryv3.DiscoveryRequest {
	c.applied(u)
	return &discoveryv3.DiscoveryRequest{TypeUrl: u.typeURL, VersionInfo: u.version, ResponseNonce: u.nonce}
}

// nack refuses u; the request names the version still in force.
func (c *Client) nack(u *update, err error) *discoveryv3.DiscoveryRequest {
	c.refused(u, err)
	req := &discoveryv3.DiscoveryRequest{
		TypeUrl:       u.typeURL,
		ResponseNonce: u.nonce,
		ErrorDetail:   errorDetail(err),
	}
	if in := c.accepted[u.typeURL]; in != nil {
		req.VersionInfo = in.version
	}
	return req
}
