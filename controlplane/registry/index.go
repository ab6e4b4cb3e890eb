package registry

import "sort"

// Index is what one registry shows, as a source has listed it: the
// providers registered interface by interface, and the application-level
// records (mappings, instances, metadata). An interface's providers are its
// interface-level ones when it has any, else those its application-level
// records make (AppProviders). A source owns its Index; it is not safe for
// concurrent use.
type Index struct {
	ifaces    map[string][]Provider
	mapping   map[string][]string            // interface → applications
	instances map[string]map[string]Instance // application → id → instance
	metadata  map[string]AppMetadata         // metaKey(application, revision) → metadata
}

// NewIndex returns an empty Index.
func NewIndex() *Index {
	return &Index{ifaces: map[string][]Provider{}, mapping: map[string][]string{},
		instances: map[string]map[string]Instance{}, metadata: map[string]AppMetadata{}}
}

func metaKey(app, revision string) string { return app + "\x00" + revision }

// SetInterface sets the interface-level providers of iface (none: nil).
func (x *Index) SetInterface(iface string, ps []Provider) {
	if len(ps) == 0 {
		delete(x.ifaces, iface)
		return
	}
	x.ifaces[iface] = ps
}

// SetMapping sets the applications that export iface (none: nil).
func (x *Index) SetMapping(iface string, apps []string) {
	if len(apps) == 0 {
		delete(x.mapping, iface)
		return
	}
	x.mapping[iface] = apps
}

// SetInstance sets (or, with nil, removes) instance id of app.
func (x *Index) SetInstance(app, id string, in *Instance) {
	if in == nil {
		delete(x.instances[app], id)
		if len(x.instances[app]) == 0 {
			delete(x.instances, app)
		}
		return
	}
	if x.instances[app] == nil {
		x.instances[app] = map[string]Instance{}
	}
	x.instances[app][id] = *in
}

// Instances are the ids of app's instances.
func (x *Index) Instances(app string) []string {
	ids := make([]string, 0, len(x.instances[app]))
	for id := range x.instances[app] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// SetMetadata records app's metadata of a revision.
func (x *Index) SetMetadata(app string, md AppMetadata) {
	x.metadata[metaKey(app, md.Revision)] = md
}

// HasMetadata reports whether app's metadata of revision is known.
func (x *Index) HasMetadata(app, revision string) bool {
	_, ok := x.metadata[metaKey(app, revision)]
	return ok
}

// InterfacesOf are the interfaces whose mapping names app.
func (x *Index) InterfacesOf(app string) []string {
	var out []string
	for iface, apps := range x.mapping {
		for _, a := range apps {
			if a == app {
				out = append(out, iface)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// Providers are the providers of iface: its interface-level ones if any,
// else those of the instances of the applications its mapping names, by
// their metadata (instances whose metadata is not known yet make none).
func (x *Index) Providers(iface string) []Provider {
	if ps := x.ifaces[iface]; len(ps) > 0 {
		return ps
	}
	var out []Provider
	for _, app := range x.mapping[iface] {
		for _, id := range x.Instances(app) {
			in := x.instances[app][id]
			md := in.Metadata
			if md == nil || md.Revision != in.Revision {
				m, ok := x.metadata[metaKey(app, in.Revision)]
				if !ok {
					continue
				}
				md = &m
			}
			out = append(out, AppProviders(iface, in, *md)...)
		}
	}
	return out
}

// All are the providers of every interface that has any.
func (x *Index) All() map[string][]Provider {
	out := make(map[string][]Provider, len(x.ifaces)+len(x.mapping))
	for iface, ps := range x.ifaces {
		out[iface] = ps
	}
	for iface := range x.mapping {
		if _, ok := out[iface]; ok {
			continue
		}
		if ps := x.Providers(iface); len(ps) > 0 {
			out[iface] = ps
		}
	}
	return out
}
