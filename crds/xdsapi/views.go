package xdsapi

// Views are the resources each proxy sees, by the namespace of its
// workload (the part of its node ID after the last dot: `<pod>.<namespace>`).
// Scoping (exportTo, the Sidecar kind) makes proxies in different namespaces
// see different parts of the mesh; the xDS server sends each proxy its
// namespace's view and shares one encoding between namespaces whose views
// are the same.
type Views struct {
	// Default is the view of a proxy whose namespace has no entry in
	// Namespaces, or whose node ID names no namespace.
	Default *Resources
	// Namespaces holds the views that differ from Default.
	Namespaces map[string]*Resources
}

// For returns the view of a proxy in namespace ns.
func (v *Views) For(ns string) *Resources {
	if r, ok := v.Namespaces[ns]; ok {
		return r
	}
	return v.Default
}
