package zookeeper

import (
	"errors"
	"net"
	"path"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/metamesh/metamesh/controlplane/registry"
)

// Application-level discovery, as dubbo-go v3.3.0 registers in ZooKeeper
// (see registry/apps.go for the records):
//
//	ROOT/mapping/<interface>            applications, comma-separated (data watch;
//	                                    ROOT/mapping: child watch)
//	SERVICES/<application>/<ip:port>    an instance (child watch on the folder,
//	                                    data watch on each)
//	ROOT/<application>/<revision>       the application's metadata (read once:
//	                                    a revision's content does not change;
//	                                    an existence watch while it is absent)
//
// SERVICES is /services under the default ROOT, else ROOT: dubbo-go puts
// instances under its registry group when one is set, and ROOT is that
// group.

// appState is the application-level part of a watcher's state.
type appState struct {
	mapped  map[string]bool // interfaces under ROOT/mapping, as last listed
	watched map[string]bool // applications whose instances are listed and watched
}

// ServicesRoot is where application instances are registered in a
// registry whose ROOT is root.
func ServicesRoot(root string) string {
	if root == registry.DefaultRoot {
		return "/services"
	}
	return root
}

// localStorage is an instance's dubbo.metadata.storage-type when its
// metadata is only served by the process itself, not in the registry.
const localStorage = "local"

func (w *watcher) mappingDir() string { return path.Join(w.root, "mapping") }

// syncApps lists every mapping, the instances of the applications they
// name and those applications' metadata, with watches.
func (w *watcher) syncApps() error { return w.relistMapping() }

// relistMapping lists the mapped interfaces again: new ones are read,
// gone ones dropped.
func (w *watcher) relistMapping() error {
	ifaces, err := w.childrenOrWait(w.mappingDir(), w.relistMapping)
	if err != nil {
		return err
	}
	now := make(map[string]bool, len(ifaces))
	for _, iface := range ifaces {
		now[iface] = true
		if w.apps.mapped[iface] {
			continue
		}
		w.apps.mapped[iface] = true
		if err := w.readMapping(iface); err != nil {
			return err
		}
	}
	for iface := range w.apps.mapped {
		if !now[iface] {
			delete(w.apps.mapped, iface)
			w.index.SetMapping(iface, nil)
			w.dirty[iface] = true
		}
	}
	return nil
}

// readMapping reads the applications of iface, watching the mapping, and
// lists the instances of those not listed yet.
func (w *watcher) readMapping(iface string) error {
	data, err := w.get(path.Join(w.mappingDir(), iface), func() error {
		if !w.apps.mapped[iface] {
			return nil // gone from ROOT/mapping since
		}
		return w.readMapping(iface)
	})
	if errors.Is(err, zk.ErrNoNode) {
		// Deleted since the folder was listed: read again if it returns.
		delete(w.apps.mapped, iface)
		w.index.SetMapping(iface, nil)
		w.dirty[iface] = true
		return nil
	}
	if err != nil {
		return err
	}
	apps := registry.ParseMapping(data)
	w.index.SetMapping(iface, apps)
	w.dirty[iface] = true
	for _, app := range apps {
		if w.apps.watched[app] {
			continue
		}
		w.apps.watched[app] = true
		if err := w.listInstances(app); err != nil {
			return err
		}
	}
	return nil
}

// listInstances lists app's instances, watching the folder; new ones are
// read, gone ones dropped.
func (w *watcher) listInstances(app string) error {
	ids, err := w.childrenOrWait(path.Join(w.services, app), func() error { return w.listInstances(app) })
	if err != nil {
		return err
	}
	had := map[string]bool{}
	for _, id := range w.index.Instances(app) {
		had[id] = true
	}
	now := make(map[string]bool, len(ids))
	for _, id := range ids {
		if _, _, err := net.SplitHostPort(id); err != nil {
			continue // not an instance: a metadata revision, under a ROOT of its own
		}
		now[id] = true
		if had[id] {
			continue // its data watch follows it
		}
		if err := w.readInstance(app, id); err != nil {
			return err
		}
	}
	for id := range had {
		if !now[id] {
			w.index.SetInstance(app, id, nil)
		}
	}
	w.markApp(app)
	return nil
}

// readInstance reads one instance of app, watching its data, and its
// metadata if not known yet.
func (w *watcher) readInstance(app, id string) error {
	data, err := w.get(path.Join(w.services, app, id), func() error {
		err := w.readInstance(app, id)
		w.markApp(app)
		return err
	})
	if errors.Is(err, zk.ErrNoNode) {
		w.index.SetInstance(app, id, nil)
		return nil
	}
	if err != nil {
		return err
	}
	in, err := registry.ParseCuratorInstance(data)
	if err != nil {
		w.log.Warn("instance node ignored", zap.String("application", app), zap.String("instance", id), zap.Error(err))
		w.index.SetInstance(app, id, nil)
		return nil
	}
	w.index.SetInstance(app, id, &in)
	if in.StorageType == localStorage {
		w.log.Warn("instance ignored: its metadata is not in the registry (dubbo.metadata.storage-type local)",
			zap.String("application", app), zap.String("instance", id))
		return nil
	}
	return w.readMetadata(app, in.Revision)
}

// readMetadata reads app's metadata of revision unless known, or watches
// for its creation.
func (w *watcher) readMetadata(app, revision string) error {
	if w.index.HasMetadata(app, revision) {
		return nil
	}
	p := path.Join(w.root, app, revision)
	data, _, err := w.conn.Get(p)
	if errors.Is(err, zk.ErrNoNode) {
		exists, err := w.watchExists(p, func() error {
			err := w.readMetadata(app, revision)
			w.markApp(app)
			return err
		})
		if err == nil && exists {
			return w.readMetadata(app, revision) // created in between
		}
		return err
	}
	if err != nil {
		return err
	}
	md, err := registry.ParseMetadata(data)
	if err != nil {
		w.log.Warn("metadata node ignored", zap.String("application", app), zap.String("revision", revision), zap.Error(err))
		return nil
	}
	md.Revision = revision // the node's name is what instances refer to
	w.index.SetMetadata(app, md)
	return nil
}

// markApp marks dirty the interfaces app's instances may serve.
func (w *watcher) markApp(app string) {
	for _, iface := range w.index.InterfacesOf(app) {
		w.dirty[iface] = true
	}
}
