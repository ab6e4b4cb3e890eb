package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// typeNames are the short names of the served types, used in metrics,
// logs and Proxies.
var typeNames = map[string]string{
	resourcev3.ClusterType:  "cluster",
	resourcev3.EndpointType: "endpoint",
	resourcev3.ListenerType: "listener",
	resourcev3.RouteType:    "route",
}

// typeName returns the short name of a type URL (the URL itself if it is
// not one of the served types).
func typeName(url string) string {
	if n, ok := typeNames[url]; ok {
		return n
	}
	return url
}

// marshaledResources are one type's resources, marshaled in name order,
// and their version.
type marshaledResources struct {
	typeURL string
	version string
	values  [][]byte
}

// newSnapshot turns res into a cache snapshot whose version per type is a
// hash of that type's resources, and checks that it is consistent. It
// returns the resources it marshaled to hash them too, by type.
func newSnapshot(res *xdsapi.Resources) (*cachev3.Snapshot, []marshaledResources, error) {
	byType := map[string][]types.Resource{
		resourcev3.ClusterType:  make([]types.Resource, 0, len(res.Clusters)),
		resourcev3.EndpointType: make([]types.Resource, 0, len(res.Endpoints)),
		resourcev3.ListenerType: make([]types.Resource, 0, len(res.Listeners)),
		resourcev3.RouteType:    make([]types.Resource, 0, len(res.Routes)),
	}
	for _, r := range res.Clusters {
		byType[resourcev3.ClusterType] = append(byType[resourcev3.ClusterType], r)
	}
	for _, r := range res.Endpoints {
		byType[resourcev3.EndpointType] = append(byType[resourcev3.EndpointType], r)
	}
	for _, r := range res.Listeners {
		byType[resourcev3.ListenerType] = append(byType[resourcev3.ListenerType], r)
	}
	for _, r := range res.Routes {
		byType[resourcev3.RouteType] = append(byType[resourcev3.RouteType], r)
	}
	snap, err := cachev3.NewSnapshot("", byType)
	if err != nil {
		return nil, nil, err
	}
	marshaled := make([]marshaledResources, 0, len(byType))
	for url, rs := range byType {
		m, err := marshalSorted(url, rs)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", typeName(url), err)
		}
		snap.Resources[cachev3.GetResponseType(url)].Version = m.version
		marshaled = append(marshaled, m)
	}
	if err := consistent(snap, res); err != nil {
		return nil, nil, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return snap, marshaled, nil
}

// marshalSorted marshals resources (deterministically) in name order and
// hashes them into their version: equal sets of resources get equal
// versions, whatever their order.
func marshalSorted(typeURL string, rs []types.Resource) (marshaledResources, error) {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b types.Resource) int {
		return strings.Compare(cachev3.GetResourceName(a), cachev3.GetResourceName(b))
	})
	m := marshaledResources{typeURL: typeURL, values: make([][]byte, len(sorted))}
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for i, r := range sorted {
		name := cachev3.GetResourceName(r)
		buf, err := opts.Marshal(r)
		if err != nil {
			return m, fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(buf))
		h.Write(buf)
		m.values[i] = buf
	}
	m.version = hex.EncodeToString(h.Sum(nil)[:8])
	return m, nil
}

// consistent runs go-control-plane's Snapshot.Consistent and adds the one
// reference it can't see. Consistent checks that the EDS clusters and the
// endpoint resources name each other exactly, and that the route
// configurations are exactly those the listeners reference; but it finds
// listener references only in Envoy's HTTP connection manager, while ours
// are in MetaProtocolProxy.route_config_name. So the routes are checked
// here, and Consistent runs on a copy without them.
func consistent(snap *cachev3.Snapshot, res *xdsapi.Resources) error {
	withoutRoutes := *snap
	withoutRoutes.Resources[types.Route] = cachev3.Resources{}
	if err := withoutRoutes.Consistent(); err != nil {
		return err
	}
	referenced := map[string]bool{}
	for _, l := range res.Listeners {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				if f.GetName() != xdsapi.FilterName || f.GetTypedConfig() == nil {
					continue
				}
				var cfg xdsapi.MetaProtocolProxy
				if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
					return fmt.Errorf("listener %s: %s: %w", l.GetName(), f.GetName(), err)
				}
				if cfg.GetRouteConfigName() != "" {
					referenced[cfg.GetRouteConfigName()] = true
				}
			}
		}
	}
	have := map[string]bool{}
	for _, r := range res.Routes {
		have[r.GetName()] = true
		if !referenced[r.GetName()] {
			return fmt.Errorf("route configuration %s is referenced by no listener", r.GetName())
		}
	}
	for name := range referenced {
		if !have[name] {
			return fmt.Errorf("route configuration %s, referenced by a listener, is missing", name)
		}
	}
	return nil
}
