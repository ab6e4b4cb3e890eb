// Package lb holds the load-balancing policies. Each builds an immutable
// picker from a cluster's endpoints, so picking takes no lock.
package lb

import (
	"fmt"

	"github.com/metamesh/metamesh/proxy/cluster"
)

// The policy names, as Envoy's Cluster.LbPolicy spells them.
const (
	RoundRobin   = "ROUND_ROBIN"
	LeastRequest = "LEAST_REQUEST"
	Random       = "RANDOM"
	RingHash     = "RING_HASH"
)

// New builds the picker for policy over eps. Endpoints with weight 0 are
// treated as weight 1, as Envoy does for an unset weight.
// An unknown policy is an error even with no endpoints, so an EDS cluster
// is refused when it arrives, not later when its first endpoint does.
func New(policy string, eps []cluster.Endpoint) (cluster.Picker, error) {
	switch policy {
	case RoundRobin, "", LeastRequest, Random, RingHash:
	default:
		return nil, fmt.Errorf("lb_policy: %s is not supported (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH)", policy)
	}
	eps = normalize(eps)
	if len(eps) == 0 {
		return empty{}, nil
	}
	switch policy {
	case LeastRequest:
		return newLeastRequest(eps), nil
	case Random:
		return newRandom(eps), nil
	case RingHash:
		return newRing(eps), nil
	}
	return newRoundRobin(eps), nil
}

func normalize(eps []cluster.Endpoint) []cluster.Endpoint {
	out := make([]cluster.Endpoint, len(eps))
	for i, e := range eps {
		if e.Weight == 0 {
			e.Weight = 1
		}
		out[i] = e
	}
	return out
}

type empty struct{}

func (empty) Pick(string, bool) *cluster.Host { return nil }
