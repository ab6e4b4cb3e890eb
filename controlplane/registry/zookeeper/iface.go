package zookeeper

import (
	"errors"
	"path"

	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/registry"
)

// Interface-level discovery: ROOT's children are interfaces (and other
// folders, such as mapping and applications' metadata, which have no
// providers node); ROOT/<interface>/providers lists provider URLs.

// syncInterfaces lists every interface and its providers, with watches,
// and returns how many interfaces there are.
func (w *watcher) syncInterfaces() (int, error) {
	ifaces, err := w.childrenOrWait(w.root, w.relistRoot)
	if err != nil {
		return 0, err
	}
	for _, iface := range ifaces {
		w.known[iface] = true
		if err := w.listProviders(iface); err != nil {
			return 0, err
		}
	}
	return len(ifaces), nil
}

// relistRoot lists the interfaces again after ROOT's children changed:
// new ones are listed and watched, gone ones dropped.
func (w *watcher) relistRoot() error {
	ifaces, err := w.childrenOrWait(w.root, w.relistRoot)
	if err != nil {
		return err
	}
	now := make(map[string]bool, len(ifaces))
	for _, iface := range ifaces {
		now[iface] = true
		if w.known[iface] {
			continue
		}
		if err := w.listProviders(iface); err != nil {
			return err
		}
		w.known[iface] = true
	}
	for iface := range w.known {
		if !now[iface] {
			delete(w.known, iface)
			w.index.SetInterface(iface, nil)
			w.dirty[iface] = true
		}
	}
	return nil
}

// listProviders lists the providers of iface into the index, watching
// them (or the providers node's creation).
func (w *watcher) listProviders(iface string) error {
	names, err := w.childrenOrWait(path.Join(w.root, iface, "providers"), func() error {
		if !w.known[iface] {
			return nil // gone from ROOT since
		}
		return w.listProviders(iface)
	})
	if err != nil {
		return err
	}
	ps := make([]registry.Provider, 0, len(names))
	for _, n := range names {
		pr, err := registry.ParseProvider(n)
		if err != nil {
			if !errors.Is(err, registry.ErrNotDubbo) {
				w.log.Warn("provider node ignored", zap.String("interface", iface), zap.Error(err))
			}
			continue
		}
		ps = append(ps, pr)
	}
	w.index.SetInterface(iface, ps)
	w.dirty[iface] = true
	return nil
}
