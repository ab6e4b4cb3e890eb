package xds

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// ProxyStatus is what the server knows of one connected proxy node.
type ProxyStatus struct {
	// Node is the node ID the proxy sent; Cluster its node cluster.
	Node    string `json:"node"`
	Cluster string `json:"cluster,omitempty"`
	// Gateway is the gateway the proxy serves ("" for a sidecar), from its
	// node metadata (docs/gateways.md).
	Gateway string `json:"gateway,omitempty"`
	// Streams is the number of open ADS streams of the node (more than one
	// only while a reconnecting proxy's old stream is being torn down, or
	// when two proxies share a node ID).
	Streams int `json:"streams"`
	// ConnectedSince is when the node's first open stream sent its first
	// request.
	ConnectedSince time.Time `json:"connected_since"`
	// Sent and Acked are, by resource type (cluster, endpoint, listener,
	// route), the version last sent and the version last ACKed; View the
	// versions of the proxy's view in force (its gateway's, its
	// namespace's, or Default).
	Sent  map[string]string `json:"sent"`
	Acked map[string]string `json:"acked"`
	View  map[string]string `json:"view,omitempty"`
	// LastNack is the last response the proxy refused, if any.
	LastNack *Nack `json:"last_nack,omitempty"`
}

// Nack is one refused response.
type Nack struct {
	Type string `json:"type"`
	// Version is the version refused ("" if the NACK named a response
	// older than the last one sent).
	Version string `json:"version"`
	// Error is the proxy's error_detail message.
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

// Proxies returns the connected proxy nodes, by node ID. It is the data of
// /debug/proxies.
func (s *Server) Proxies() []ProxyStatus {
	pub := s.state.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ProxyStatus, 0, len(s.nodes))
	for _, n := range s.nodes {
		p := *n
		p.Sent, p.Acked = maps.Clone(n.Sent), maps.Clone(n.Acked)
		if vw := pub.forProxy(n.Node, n.Gateway); vw != nil {
			p.View = vw.versions()
		}
		if n.LastNack != nil {
			nack := *n.LastNack
			p.LastNack = &nack
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b ProxyStatus) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// VersionsFor returns the versions in force of the view of a node (its
// gateway's if it is connected and serves one, its namespace's, or
// Default) by type, or nil before the first push.
func (s *Server) VersionsFor(node string) map[string]string {
	s.mu.Lock()
	gw := ""
	if n := s.nodes[node]; n != nil {
		gw = n.Gateway
	}
	s.mu.Unlock()
	if vw := s.state.Load().forProxy(node, gw); vw != nil {
		return vw.versions()
	}
	return nil
}

// connected is the number of connected nodes (for the gauge).
func (s *Server) connected() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(len(s.nodes))
}
