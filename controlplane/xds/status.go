package xds

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// The per-node state of Proxies, kept by the streams: every call takes
// s.mu.

var errNoNodeID = status.Error(codes.InvalidArgument, "xds: the first request of a stream must carry a node with an id")

// attach counts a stream of node, which sent its first request.
func (s *Server) attach(node *corev3.Node, protocol string) error {
	if node.GetId() == "" {
		return errNoNodeID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[node.GetId()]
	if n == nil {
		n = &ProxyStatus{Node: node.GetId(), Cluster: node.GetCluster(), Gateway: gatewayOf(node), ConnectedSince: time.Now(), Sent: map[string]string{}, Acked: map[string]string{}}
		s.nodes[n.Node] = n
		s.log.Info("proxy connected", zap.String("node", n.Node), zap.String("cluster", n.Cluster), zap.String("gateway", n.Gateway), zap.String("protocol", protocol))
	}
	n.Streams++
	return nil
}

// gatewayOf is the gateway a node serves, "namespace/name" (its
// xdsapi.GatewayMetadata), or "" for a sidecar (docs/gateways.md).
func gatewayOf(node *corev3.Node) string {
	return node.GetMetadata().GetFields()[xdsapi.GatewayMetadata].GetStringValue()
}

// detach uncounts a stream of node; the node is forgotten with its last.
func (s *Server) detach(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodes[node]
	if n == nil {
		return
	}
	if n.Streams--; n.Streams > 0 {
		return
	}
	delete(s.nodes, node)
	s.log.Info("proxy disconnected", zap.String("node", node))
}

func (s *Server) sent(node, typeURL, version, protocol string) {
	s.metrics.responses.WithLabelValues(typeName(typeURL), protocol).Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nodes[node]; n != nil {
		n.Sent[typeName(typeURL)] = version
	}
}

func (s *Server) acked(node, typeURL, version string) {
	s.metrics.acks.WithLabelValues(typeName(typeURL)).Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nodes[node]; n != nil {
		n.Acked[typeName(typeURL)] = version
	}
}

// nacked records a refused response; version is "" when the NACK named a
// response older than the last one sent.
func (s *Server) nacked(node, typeURL, version, detail string) {
	name := typeName(typeURL)
	s.metrics.nacks.WithLabelValues(name).Inc()
	s.log.Warn("proxy refused a config (NACK); it keeps its last good one",
		zap.String("node", node), zap.String("type", typeURL), zap.String("version", version), zap.String("error", detail))
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nodes[node]; n != nil {
		n.LastNack = &Nack{Type: name, Version: version, Error: detail, At: time.Now()}
	}
}
