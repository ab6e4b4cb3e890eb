package etcd

import (
	"strings"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/registry"
)

// view is the registry as listed and watched: the keys applied so far, by
// what they are.
type view struct {
	root  string // ROOT and a slash
	log   *zap.Logger
	index *registry.Index
	// providers are the interface-level providers by interface and key.
	providers map[string]map[string]registry.Provider
}

func newView(root string, log *zap.Logger) *view {
	return &view{root: root, log: log, index: registry.NewIndex(), providers: map[string]map[string]registry.Provider{}}
}

// apply records one key's value (or its deletion) and returns the
// interfaces whose providers it may change. Keys of other shapes are
// ignored:
//
//	ROOT/<interface>/providers/<URL-encoded provider URL>
//	ROOT/mapping/<interface>               applications, comma-separated
//	/services/<application>/<ip:port>      an instance (its metadata embedded)
func (v *view) apply(key string, value []byte, deleted bool) []string {
	if rest, ok := strings.CutPrefix(key, v.root); ok {
		if iface, node, ok := strings.Cut(rest, "/providers/"); ok && oneSegment(iface) && oneSegment(node) {
			return v.provider(iface, key, node, deleted)
		}
		if iface, ok := strings.CutPrefix(rest, "mapping/"); ok && oneSegment(iface) {
			if deleted {
				v.index.SetMapping(iface, nil)
			} else {
				v.index.SetMapping(iface, registry.ParseMapping(value))
			}
			return []string{iface}
		}
	}
	if rest, ok := strings.CutPrefix(key, ServicesPrefix); ok {
		if app, id, ok := strings.Cut(rest, "/"); ok && oneSegment(app) && oneSegment(id) {
			return v.instance(app, id, value, deleted)
		}
	}
	return nil
}

func oneSegment(s string) bool { return s != "" && !strings.Contains(s, "/") }

func (v *view) provider(iface, key, node string, deleted bool) []string {
	byKey := v.providers[iface]
	if byKey == nil {
		byKey = map[string]registry.Provider{}
		v.providers[iface] = byKey
	}
	if deleted {
		delete(byKey, key)
	} else if p, err := registry.ParseProvider(node); err == nil {
		byKey[key] = p
	} else {
		return nil
	}
	ps := make([]registry.Provider, 0, len(byKey))
	for _, p := range byKey {
		ps = append(ps, p)
	}
	if len(byKey) == 0 {
		delete(v.providers, iface)
	}
	v.index.SetInterface(iface, ps)
	return []string{iface}
}

func (v *view) instance(app, id string, value []byte, deleted bool) []string {
	if deleted {
		v.index.SetInstance(app, id, nil)
		return v.index.InterfacesOf(app)
	}
	in, err := registry.ParseEtcdInstance(value)
	switch {
	case err != nil:
		v.log.Warn("instance key ignored", zap.String("application", app), zap.String("instance", id), zap.Error(err))
		v.index.SetInstance(app, id, nil)
	case in.Metadata == nil:
		v.log.Warn("instance ignored: it carries no metadata", zap.String("application", app), zap.String("instance", id))
		v.index.SetInstance(app, id, nil)
	default:
		v.index.SetInstance(app, id, &in)
	}
	return v.index.InterfacesOf(app)
}
