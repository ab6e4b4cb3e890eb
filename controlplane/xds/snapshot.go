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
	resourcev3.SecretType:   "secret",
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
// with their names, their versions and the version of all of them.
type marshaledResources struct {
	typeURL string
	version string
	names   []string
	hashes  []string // each resource's version, for delta
	values  [][]byte
}

// builder builds the views of one publish. Resources that are the same
// message in several views (the translator shares them) are marshaled
// once, and a type whose version is that of a table already built, in
// this publish or the previous one, reuses that table.
type builder struct {
	marshaled map[types.Resource]marshaledOne
	tables    map[[2]string]*table // by type URL and version
}

type marshaledOne struct {
	value []byte
	hash  string
}

// newBuilder returns a builder reusing the tables of prev (nil: none).
func newBuilder(prev *published) *builder {
	b := &builder{marshaled: map[types.Resource]marshaledOne{}, tables: map[[2]string]*table{}}
	if prev == nil {
		return b
	}
	for _, v := range prev.distinct() {
		for _, t := range v.tables {
			b.tables[[2]string{t.typeURL, t.version}] = t
		}
	}
	return b
}

// view checks that res is consistent and makes its view, whose version
// per type is a hash of that type's resources.
func (b *builder) view(res *xdsapi.Resources) (*view, error) {
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
		return nil, err
	}
	if err := consistent(snap, res); err != nil {
		return nil, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	v := &view{}
	for i, url := range typeOrder {
		m, err := b.marshalSorted(url, byType[url])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", typeName(url), err)
		}
		key := [2]string{url, m.version}
		if b.tables[key] == nil {
			b.tables[key] = newTable(m)
		}
		v.tables[i] = b.tables[key]
	}
	return v, nil
}

// marshalSorted marshals resources (deterministically) in name order and
// hashes them into their version: equal sets of resources get equal
// versions, whatever their order.
func (b *builder) marshalSorted(typeURL string, rs []types.Resource) (marshaledResources, error) {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b types.Resource) int {
		return strings.Compare(cachev3.GetResourceName(a), cachev3.GetResourceName(b))
	})
	m := marshaledResources{typeURL: typeURL, names: make([]string, len(sorted)), hashes: make([]string, len(sorted)), values: make([][]byte, len(sorted))}
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for i, r := range sorted {
		name := cachev3.GetResourceName(r)
		one, ok := b.marshaled[r]
		if !ok {
			buf, err := opts.Marshal(r)
			if err != nil {
				return m, fmt.Errorf("%s: %w", name, err)
			}
			sum := sha256.Sum256(buf)
			one = marshaledOne{value: buf, hash: hex.EncodeToString(sum[:8])}
			b.marshaled[r] = one
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(one.value))
		h.Write(one.value)
		m.names[i], m.hashes[i], m.values[i] = name, one.hash, one.value
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
