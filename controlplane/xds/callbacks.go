package xds

import (
	"context"
	"errors"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/delta/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	"go.uber.org/zap"
)

// stream is one open ADS stream.
type stream struct {
	node  string // "" until the first request
	delta bool
	sent  map[string]sent // by type URL: the last response
}

// sent identifies a response: the nonce it went out with and its version.
type sent struct{ nonce, version string }

func (s *stream) protocol() string {
	if s.delta {
		return "delta"
	}
	return "sotw"
}

// callbacks are go-control-plane's hooks into the streams. They keep the
// per-node state, hand a node its first snapshot, and record ACKs and
// NACKs. They run on the stream's goroutine, before the request is handed
// to the cache (requests) or before the response is sent (responses).
type callbacks struct{ s *Server }

var errNoNodeID = errors.New("xds: the first request of a stream must carry a node with an id")

func (c callbacks) open(id int64, delta bool) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.streams[id] = &stream{delta: delta, sent: map[string]sent{}}
}

func (c callbacks) closed(id int64) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[id]
	delete(s.streams, id)
	if st == nil || st.node == "" {
		return
	}
	n := s.nodes[st.node]
	n.Streams--
	if n.Streams > 0 {
		return
	}
	delete(s.nodes, st.node)
	s.cache.ClearSnapshot(st.node)
	s.log.Info("proxy disconnected", zap.String("node", st.node))
}

// request handles what every request has in common and returns the
// stream, or an error that closes it. Called with s.mu held.
func (c callbacks) request(id int64, node *corev3.Node) (*stream, error) {
	s := c.s
	st := s.streams[id]
	if st == nil || st.node != "" {
		return st, nil
	}
	if node.GetId() == "" {
		return nil, errNoNodeID
	}
	st.node = node.GetId()
	n := s.nodes[st.node]
	if n == nil {
		n = &ProxyStatus{Node: st.node, Cluster: node.GetCluster(), ConnectedSince: time.Now(), Sent: map[string]string{}, Acked: map[string]string{}}
		s.nodes[st.node] = n
		// The node's first request: give it the current snapshot before the
		// cache looks for one.
		if s.current != nil {
			if err := s.cache.SetSnapshot(context.Background(), st.node, s.current.forNode(st.node)); err != nil {
				return nil, err
			}
		}
		s.log.Info("proxy connected", zap.String("node", st.node), zap.String("cluster", node.GetCluster()), zap.String("protocol", st.protocol()))
	}
	n.Streams++
	return st, nil
}

func (c callbacks) ack(st *stream, typeURL, version string) {
	c.s.nodes[st.node].Acked[typeName(typeURL)] = version
	c.s.metrics.acks.WithLabelValues(typeName(typeURL)).Inc()
}

func (c callbacks) nack(st *stream, typeURL, version string, detail string) {
	s := c.s
	name := typeName(typeURL)
	s.nodes[st.node].LastNack = &Nack{Type: name, Version: version, Error: detail, At: time.Now()}
	s.metrics.nacks.WithLabelValues(name).Inc()
	s.log.Warn("proxy refused a config (NACK); it keeps its last good one",
		zap.String("node", st.node), zap.String("type", typeURL), zap.String("version", version), zap.String("error", detail))
}

func (c callbacks) response(id int64, typeURL, nonce, version string) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	st := c.s.streams[id]
	if st == nil {
		return
	}
	st.sent[typeURL] = sent{nonce: nonce, version: version}
	if n := c.s.nodes[st.node]; n != nil {
		n.Sent[typeName(typeURL)] = version
	}
	c.s.metrics.responses.WithLabelValues(typeName(typeURL), st.protocol()).Inc()
}

// OnStreamOpen implements sotw.Callbacks.
func (c callbacks) OnStreamOpen(_ context.Context, id int64, _ string) error {
	c.open(id, false)
	return nil
}

// OnStreamClosed implements sotw.Callbacks.
func (c callbacks) OnStreamClosed(id int64, _ *corev3.Node) { c.closed(id) }

// OnStreamRequest implements sotw.Callbacks. A NACK names the last
// version the proxy accepted; left so, the cache would answer it at once
// with the refused version again, and the proxy would refuse it again, in
// a loop. So a NACK of the last response sent is handed to the cache as if
// it named the refused version: the cache then waits for the next change.
func (c callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	st, err := c.request(id, req.GetNode())
	if st == nil || err != nil {
		return err
	}
	last := st.sent[req.GetTypeUrl()]
	switch {
	case req.GetErrorDetail() != nil:
		version := ""
		if req.GetResponseNonce() == last.nonce {
			version = last.version
			req.VersionInfo = last.version
		}
		c.nack(st, req.GetTypeUrl(), version, req.GetErrorDetail().GetMessage())
	case req.GetResponseNonce() != "":
		c.ack(st, req.GetTypeUrl(), req.GetVersionInfo())
	}
	return nil
}

// OnStreamResponse implements sotw.Callbacks.
func (c callbacks) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.response(id, resp.GetTypeUrl(), resp.GetNonce(), resp.GetVersionInfo())
}

// OnDeltaStreamOpen implements delta.Callbacks.
func (c callbacks) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	c.open(id, true)
	return nil
}

// OnDeltaStreamClosed implements delta.Callbacks.
func (c callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) { c.closed(id) }

// OnStreamDeltaRequest implements delta.Callbacks. A delta ACK or NACK
// carries no version: it is the one sent with the nonce it names. (The
// delta cache does not resend a NACKed version: it tracks what it sent.)
func (c callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	st, err := c.request(id, req.GetNode())
	if st == nil || err != nil {
		return err
	}
	last := st.sent[req.GetTypeUrl()]
	version := ""
	if req.GetResponseNonce() == last.nonce {
		version = last.version
	}
	switch {
	case req.GetErrorDetail() != nil:
		c.nack(st, req.GetTypeUrl(), version, req.GetErrorDetail().GetMessage())
	case req.GetResponseNonce() != "" && version != "":
		c.ack(st, req.GetTypeUrl(), version)
	}
	return nil
}

// OnStreamDeltaResponse implements delta.Callbacks.
func (c callbacks) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.response(id, resp.GetTypeUrl(), resp.GetNonce(), resp.GetSystemVersionInfo())
}

var (
	_ sotw.Callbacks  = callbacks{}
	_ delta.Callbacks = callbacks{}
)
