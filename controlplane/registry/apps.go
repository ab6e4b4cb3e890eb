package registry

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
)

// Application-level discovery (Dubbo 3's "service" registry type) replaces
// the interface-level provider URLs with three records, as dubbo-go v3.3.0
// writes them:
//
//   - the mapping ROOT/mapping/<interface>: the names of the applications
//     that export the interface, comma-separated;
//   - one instance per process under <services>/<application>/<ip:port>,
//     JSON (Curator's ServiceInstance in ZooKeeper, dubbo-go's
//     DefaultServiceInstance in etcd), whose metadata gives the port of each
//     protocol (dubbo.endpoints) and the revision of the application's
//     metadata (dubbo.metadata.revision);
//   - the application's metadata of that revision, JSON (ROOT/<application>/
//     <revision> in ZooKeeper; embedded in the instance in etcd): the
//     services it exports, with their version, group, protocol and a few
//     parameters.

// Instance is one process of an application, as registered.
type Instance struct {
	// Address is its IP address (or DNS name).
	Address string
	// Port is the instance's port: that of its first exported protocol.
	Port int
	// Endpoints are the port of each protocol it serves (dubbo.endpoints).
	Endpoints map[string]int
	// Revision names the metadata its services are described by.
	Revision string
	// StorageType is where that metadata is kept: "remote" (the registry)
	// or "local" (only the process's own MetadataService).
	StorageType string
	// Metadata is the application's metadata when the instance carries it
	// (dubbo-go's etcd instances do), else nil.
	Metadata *AppMetadata
}

// AppMetadata is an application's metadata of one revision.
type AppMetadata struct {
	App      string
	Revision string
	// Services are what it exports, sorted by interface, group, version and
	// protocol.
	Services []ServiceInfo
}

// ServiceInfo is one exported service of an application's metadata.
type ServiceInfo struct {
	Interface, Group, Version, Protocol string
	// Params are the URL parameters dubbo-go keeps in the metadata
	// (application, release, methods, serialization, timeout, weight, …;
	// not the provider's own parameters such as server.WithParam's).
	Params map[string]string
}

// Metadata keys of an instance.
const (
	endpointsKey   = "dubbo.endpoints"
	revisionKey    = "dubbo.metadata.revision"
	storageTypeKey = "dubbo.metadata.storage-type"
)

// ParseMapping parses a mapping node: application names, comma-separated.
// Blank names are dropped and duplicates kept once, in the given order.
func ParseMapping(data []byte) []string {
	var apps []string
	seen := map[string]bool{}
	for _, a := range strings.Split(string(data), ",") {
		if a = strings.TrimSpace(a); a != "" && !seen[a] {
			seen[a] = true
			apps = append(apps, a)
		}
	}
	return apps
}

// ParseCuratorInstance parses an instance node as Dubbo writes it in
// ZooKeeper (Curator's ServiceInstance JSON, the Dubbo metadata in
// payload.metadata).
func ParseCuratorInstance(data []byte) (Instance, error) {
	var raw struct {
		Address string `json:"address"`
		Port    int    `json:"port"`
		Payload struct {
			Metadata map[string]string `json:"metadata"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Instance{}, fmt.Errorf("registry: instance: %w", err)
	}
	return newInstance(raw.Address, raw.Port, raw.Payload.Metadata, nil)
}

// ParseEtcdInstance parses an instance key's value as dubbo-go writes it in
// etcd (its DefaultServiceInstance as JSON, the application's metadata
// embedded as ServiceMetadata).
func ParseEtcdInstance(data []byte) (Instance, error) {
	var raw struct {
		Host            string
		Port            int
		Metadata        map[string]string
		ServiceMetadata *metadataJSON
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Instance{}, fmt.Errorf("registry: instance: %w", err)
	}
	var md *AppMetadata
	if raw.ServiceMetadata != nil {
		m := raw.ServiceMetadata.metadata()
		md = &m
	}
	return newInstance(raw.Host, raw.Port, raw.Metadata, md)
}

func newInstance(addr string, port int, meta map[string]string, md *AppMetadata) (Instance, error) {
	if addr == "" || port < 1 || port > 65535 {
		return Instance{}, fmt.Errorf("registry: instance: address %q port %d", addr, port)
	}
	in := Instance{Address: addr, Port: port, Revision: meta[revisionKey], StorageType: meta[storageTypeKey], Metadata: md}
	if in.Revision == "" {
		return Instance{}, fmt.Errorf("registry: instance %s: no %s", in.addr(), revisionKey)
	}
	if eps := meta[endpointsKey]; eps != "" {
		var list []struct {
			Port     int    `json:"port"`
			Protocol string `json:"protocol"`
		}
		if err := json.Unmarshal([]byte(eps), &list); err != nil {
			return Instance{}, fmt.Errorf("registry: instance %s: %s: %w", in.addr(), endpointsKey, err)
		}
		in.Endpoints = make(map[string]int, len(list))
		for _, e := range list {
			if e.Protocol != "" && e.Port >= 1 && e.Port <= 65535 {
				in.Endpoints[e.Protocol] = e.Port
			}
		}
	}
	return in, nil
}

func (in Instance) addr() string { return net.JoinHostPort(in.Address, fmt.Sprint(in.Port)) }

// metadataJSON is dubbo-go's MetadataInfo as JSON.
type metadataJSON struct {
	App      string `json:"app"`
	Revision string `json:"revision"`
	Services map[string]struct {
		Name     string            `json:"name"`
		Group    string            `json:"group"`
		Version  string            `json:"version"`
		Protocol string            `json:"protocol"`
		Params   map[string]string `json:"params"`
	} `json:"services"`
}

func (m *metadataJSON) metadata() AppMetadata {
	out := AppMetadata{App: m.App, Revision: m.Revision}
	for _, s := range m.Services {
		if s.Name != "" {
			out.Services = append(out.Services, ServiceInfo{Interface: s.Name, Group: s.Group, Version: s.Version, Protocol: s.Protocol, Params: s.Params})
		}
	}
	sort.Slice(out.Services, func(i, j int) bool {
		a, b := out.Services[i], out.Services[j]
		return a.Interface+"\x00"+a.Group+"\x00"+a.Version+"\x00"+a.Protocol < b.Interface+"\x00"+b.Group+"\x00"+b.Version+"\x00"+b.Protocol
	})
	return out
}

// ParseMetadata parses an application's metadata (dubbo-go's MetadataInfo
// JSON, as published in the registry).
func ParseMetadata(data []byte) (AppMetadata, error) {
	var raw metadataJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return AppMetadata{}, fmt.Errorf("registry: metadata: %w", err)
	}
	return raw.metadata(), nil
}

// AppProviders are the providers of iface that instance in serves, per the
// metadata md of its application: one for each dubbo service of md that
// exports iface (one per group and version), at the instance's address and
// its dubbo port (its only port if it lists none), with the service's
// parameters, its version and group.
func AppProviders(iface string, in Instance, md AppMetadata) []Provider {
	port, ok := in.Endpoints["dubbo"]
	if len(in.Endpoints) == 0 {
		port, ok = in.Port, true
	}
	if !ok {
		return nil
	}
	var out []Provider
	for _, s := range md.Services {
		if s.Interface != iface || s.Protocol != "dubbo" {
			continue
		}
		params := make(map[string]string, len(s.Params)+2)
		for k, v := range s.Params {
			params[k] = v
		}
		for k, v := range map[string]string{"version": s.Version, "group": s.Group} {
			if v != "" {
				params[k] = v
			}
		}
		out = append(out, Provider{Interface: iface, Address: in.Address, Port: port, Params: params})
	}
	return out
}
