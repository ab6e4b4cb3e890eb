package router

import (
	"errors"
	"fmt"
)

// NewTable validates and compiles a route table. Every route needs at least
// one cluster with a positive total weight; a domain may belong to one
// virtual host only.
func NewTable(name string, vhosts []*VirtualHost) (*Table, error) {
	t := &Table{Name: name, hosts: make(map[string]*VirtualHost)}
	for i, v := range vhosts {
		if len(v.Domains) == 0 {
			return nil, fmt.Errorf("virtual_hosts[%d] (%s): domains: empty", i, v.Name)
		}
		for _, d := range v.Domains {
			if v.Service == "" && d != "*" {
				v.Service = d
			}
			if d == "*" {
				if t.wildcard != nil {
					return nil, fmt.Errorf("virtual_hosts[%d] (%s): domains: %q claimed twice", i, v.Name, d)
				}
				t.wildcard = v
				continue
			}
			if _, dup := t.hosts[d]; dup {
				return nil, fmt.Errorf("virtual_hosts[%d] (%s): domains: %q claimed twice", i, v.Name, d)
			}
			t.hosts[d] = v
		}
		for j, r := range v.Routes {
			if err := r.compile(); err != nil {
				return nil, fmt.Errorf("virtual_hosts[%d] (%s): routes[%d] (%s): %w", i, v.Name, j, r.Name, err)
			}
		}
		t.asks = t.asks || v.Global != nil
	}
	return t, nil
}

func (r *Route) compile() error {
	if len(r.Clusters) == 0 {
		return errors.New("route: no destination cluster")
	}
	var total uint64
	for _, c := range r.Clusters {
		if c.Name == "" {
			return errors.New("route: weighted_clusters: empty cluster name")
		}
		total += uint64(c.Weight)
	}
	if len(r.Clusters) == 1 && total == 0 {
		r.Clusters[0].Weight, total = 1, 1
	}
	if total == 0 || total > 1<<31 {
		return fmt.Errorf("route: weighted_clusters: total weight %d out of range", total)
	}
	r.total = uint32(total)
	return nil
}
