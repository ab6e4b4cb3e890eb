package xdsapi

// Views are the resources each proxy sees, by the namespace of its
// workload (the part of its node ID after the last dot: `<pod>.<namespace>`)
// and, for a gateway's proxy, by the gateway it serves.
// Scoping (exportTo, the Sidecar kind) makes proxies in different namespaces
// see different parts of the mesh; the xDS server sends each proxy its
// namespace's view and shares one encoding between namespaces whose views
// are the same. A MetaRouter's gateways (docs/gateways.md) make the proxies
// of a gateway see other routes than the sidecars.
type Views struct {
	// Default is the view of a proxy whose namespace has no entry in
	// Namespaces, or whose node ID names no namespace.
	Default *Resources
	// Namespaces holds the views that differ from Default.
	Namespaces map[string]*Resources
	// Gateways holds the views of the proxies that serve a gateway (they
	// say which in their node metadata, GatewayMetadata), by
	// "namespace/name"; the AnyGateway entry is that of a gateway with no
	// entry of its own. Nil: gateway proxies get their namespace's view.
	Gateways map[string]*Resources
}

// AnyGateway keys, in Views.Gateways, the view of a gateway no MetaRouter
// names.
const AnyGateway = "*"

// GatewayMetadata is the node metadata field in which a gateway's proxy
// names the gateway it serves, "namespace/name" (the proxy's --gateway).
const GatewayMetadata = "metamesh.io/gateway"

// For returns the view of a proxy in namespace ns.
func (v *Views) For(ns string) *Resources {
	if r, ok := v.Namespaces[ns]; ok {
		return r
	}
	return v.Default
}

// ForGateway returns the view of a proxy of gateway gw
// ("namespace/name"), or nil when there are no gateway views.
func (v *Views) ForGateway(gw string) *Resources {
	if r, ok := v.Gateways[gw]; ok {
		return r
	}
	return v.Gateways[AnyGateway]
}
