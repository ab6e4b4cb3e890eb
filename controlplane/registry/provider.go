package registry

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Provider is one provider URL seen in a registry.
type Provider struct {
	// Interface is the Dubbo interface: the host it is an endpoint of.
	Interface string
	// Address is the provider's IP address (or DNS name).
	Address string
	// Port is the provider's port.
	Port int
	// Params are the URL's parameters as registered (first value of each).
	Params map[string]string
	// Registry is the URL of the registry it was seen in.
	Registry string
}

// ErrNotDubbo is returned for a provider URL of another protocol (tri://,
// rest://, …): metamesh routes the dubbo protocol's providers only.
var ErrNotDubbo = errors.New("not a dubbo:// provider")

// ParseProvider parses a provider node as Dubbo registers it: the
// URL-encoded form of dubbo://IP:PORT/PATH?K=V&…. The interface is the
// `interface` parameter, else PATH.
func ParseProvider(node string) (Provider, error) {
	raw, err := url.QueryUnescape(node)
	if err != nil {
		return Provider{}, fmt.Errorf("registry: provider %q: %w", node, err)
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return Provider{}, fmt.Errorf("registry: provider %q: not a URL", raw)
	}
	if scheme != "dubbo" {
		return Provider{}, fmt.Errorf("registry: provider %q: %w", raw, ErrNotDubbo)
	}
	rest, query, _ := strings.Cut(rest, "?")
	hostport, path, _ := strings.Cut(rest, "/")
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil || host == "" {
		return Provider{}, fmt.Errorf("registry: provider %q: address %q is not HOST:PORT", raw, hostport)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return Provider{}, fmt.Errorf("registry: provider %q: port %q out of range", raw, portStr)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return Provider{}, fmt.Errorf("registry: provider %q: parameters: %w", raw, err)
	}
	p := Provider{Address: host, Port: port, Params: make(map[string]string, len(q))}
	for k, vs := range q {
		if k != "" && len(vs) > 0 {
			p.Params[k] = vs[0]
		}
	}
	p.Interface = p.Params["interface"]
	if p.Interface == "" {
		p.Interface = strings.Trim(path, "/")
	}
	if p.Interface == "" {
		return Provider{}, fmt.Errorf("registry: provider %q: no interface", raw)
	}
	return p, nil
}

// Addr is the provider's HOST:PORT.
func (p Provider) Addr() string { return net.JoinHostPort(p.Address, strconv.Itoa(p.Port)) }

// key identifies a provider across registries: one process exporting an
// interface once, whichever registries it registered in.
func (p Provider) key() string {
	return p.Interface + "\x00" + p.Addr() + "\x00" + p.Params["group"] + "\x00" + p.Params["version"]
}

// sortProviders sorts ps by key, then registry, computing each key once.
func sortProviders(ps []Provider) {
	keys := make([]string, len(ps))
	idx := make([]int, len(ps))
	for i := range ps {
		keys[i], idx[i] = ps[i].key(), i
	}
	sort.Slice(idx, func(a, b int) bool {
		i, j := idx[a], idx[b]
		if keys[i] != keys[j] {
			return keys[i] < keys[j]
		}
		return ps[i].Registry < ps[j].Registry
	})
	sorted := make([]Provider, len(ps))
	for n, i := range idx {
		sorted[n] = ps[i]
	}
	copy(ps, sorted)
}
