// Package registry turns the providers that Dubbo services register in
// their own registries (ZooKeeper, etcd) into config objects: each provider
// URL under ROOT/<interface>/providers is an endpoint of the host
// <interface>, labelled with the URL's parameters; an interface without
// any takes the instances its application-level records name (apps.go,
// index.go). A Source watches one registry and reports to a Sink; the
// Mixer merges what every source reports into the Input of another config
// source (files, Kubernetes) before translation, so the translator stays
// pure, and tells the Kubernetes status which ServiceEntries it fed
// (status.go).
//
// A registry kind is one package (zookeeper/, etcd/) implementing Source;
// Nacos would be one more.
package registry

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// DefaultRoot is the path (ZooKeeper) or key prefix (etcd) Dubbo registers
// under unless the registry URL names another.
const DefaultRoot = "/dubbo"

// Source watches one registry and reports what it sees to a Sink.
type Source interface {
	// Name is the registry's URL, as given: it names the registry to the
	// Sink, in logs, metrics and labels.
	Name() string
	// Run watches the registry until ctx ends, reporting to sink, and
	// returns nil then. It keeps trying while the registry is unreachable
	// and returns an error only when it can't run at all.
	Run(ctx context.Context, sink Sink) error
}

// Sink receives what the sources see. Its methods are safe for concurrent
// use; each call is one change.
type Sink interface {
	// ReplaceAll sets every provider of the registry, by interface: a
	// full list, as after (re)connecting. Interfaces not in it are gone.
	ReplaceAll(registry string, byInterface map[string][]Provider)
	// ReplaceInterface sets the providers of one interface of the registry.
	ReplaceInterface(registry, iface string, providers []Provider)
	// Available flags the registry reachable or not. While it is not, its
	// last known providers stay in force.
	Available(registry string, up bool)
}

// Target is a parsed --registry URL:
// SCHEME://HOST:PORT[,HOST:PORT…][/ROOT][?port=N].
type Target struct {
	// Scheme is the registry kind: zookeeper or etcd.
	Scheme string
	// Hosts are the servers' HOST:PORT, in the given order.
	Hosts []string
	// Root is where providers are registered (DefaultRoot if not given).
	Root string
	// Port, when not 0, is the port ServiceEntries made for the registry's
	// interfaces listen on, instead of their providers' port.
	Port int
	// URL is the URL as given, which names the registry in logs, metrics
	// and labels.
	URL string
}

// Schemes are the registry kinds this build can watch.
var Schemes = []string{"zookeeper", "etcd"}

// ParseTarget parses a --registry URL.
func ParseTarget(raw string) (Target, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return Target{}, fmt.Errorf("registry: %q: want SCHEME://HOST:PORT[,HOST:PORT…][/ROOT]", raw)
	}
	known := false
	for _, s := range Schemes {
		known = known || s == scheme
	}
	if !known {
		return Target{}, fmt.Errorf("registry: %q: unknown scheme %q (known: %s)", raw, scheme, strings.Join(Schemes, ", "))
	}
	t := Target{Scheme: scheme, Root: DefaultRoot, URL: raw}
	rest, query, _ := strings.Cut(rest, "?")
	hosts, root, hasRoot := strings.Cut(rest, "/")
	if hasRoot && strings.Trim(root, "/") != "" {
		t.Root = "/" + strings.Trim(root, "/")
	}
	for _, h := range strings.Split(hosts, ",") {
		host, port, err := net.SplitHostPort(h)
		if err != nil || host == "" || port == "" {
			return Target{}, fmt.Errorf("registry: %q: server %q is not HOST:PORT", raw, h)
		}
		t.Hosts = append(t.Hosts, h)
	}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return Target{}, fmt.Errorf("registry: %q: %w", raw, err)
		}
		for k := range q {
			if k != "port" {
				return Target{}, fmt.Errorf("registry: %q: unknown option %q (known: port)", raw, k)
			}
		}
		if p := q.Get("port"); p != "" {
			var n int
			if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != p {
				return Target{}, fmt.Errorf("registry: %q: port=%q is not a port number", raw, p)
			}
			t.Port = n
		}
	}
	return t, nil
}
