package xdsclient

import (
	"fmt"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/metamesh/metamesh/crds/xdsapi"
)

// subscribed are the types the client asks for, in the order xDS wants
// them applied: clusters and their endpoints before the listeners and
// routes that use them.
var subscribed = []struct{ url, name string }{
	{resourcev3.ClusterType, "cluster"},
	{resourcev3.EndpointType, "endpoint"},
	{resourcev3.ListenerType, "listener"},
	{resourcev3.RouteType, "route"},
}

// typeName is the short name of a subscribed type URL ("" if it is not
// one).
func typeName(url string) string {
	for _, t := range subscribed {
		if t.url == url {
			return t.name
		}
	}
	return ""
}

// update is one response's resources, decoded.
type update struct {
	typeURL, version, nonce string
	resources               []proto.Message
}

// decode unpacks a response's resources, which must all be of its type.
func decode(resp *discoveryv3.DiscoveryResponse) (*update, error) {
	u := &update{typeURL: resp.GetTypeUrl(), version: resp.GetVersionInfo(), nonce: resp.GetNonce()}
	if typeName(u.typeURL) == "" {
		return nil, fmt.Errorf("type %s was not subscribed to", u.typeURL)
	}
	for i, a := range resp.GetResources() {
		if a.GetTypeUrl() != u.typeURL {
			return nil, fmt.Errorf("resources[%d]: type %s in a %s response", i, a.GetTypeUrl(), u.typeURL)
		}
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("resources[%d]: %w", i, err)
		}
		u.resources = append(u.resources, m)
	}
	return u, nil
}

// resources builds the full set from one update per type.
func resources(byType map[string]*update) (*xdsapi.Resources, error) {
	res := &xdsapi.Resources{}
	for _, u := range byType {
		for _, m := range u.resources {
			if err := res.Add(m); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}
