package translate

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// destination is an address (or range) and port a client may dial.
type destination struct {
	prefix string
	port   uint32
}

// serviceDestinations lists what a client may dial to reach svc on its
// port sp, for proxies that capture connections (mesh mode): the
// service's addresses on sp's number, and each endpoint with an IP
// address on its own port for sp. DNS-named endpoints are left out (the
// original destination of a connection is an address).
func serviceDestinations(svc *service, sp v1alpha1.ServicePort) []destination {
	var out []destination
	for _, a := range svc.entry.Spec.Addresses {
		out = append(out, destination{a, uint32(sp.Number)})
	}
	for _, ep := range svc.entry.Spec.Endpoints {
		if _, err := netip.ParseAddr(ep.Address); err != nil {
			continue
		}
		n := uint32(sp.Number)
		if m, ok := ep.Ports[string(sp.Name)]; ok {
			n = uint32(m)
		}
		out = append(out, destination{ep.Address, n})
	}
	return out
}

// captureDestinations lists the destinations of svcs, the services of
// port p a view sees. On a port of a protocol whose frames don't name
// their service, shared by services only with Options.CaptureOnly
// (sharedPort), each service but the listener's default one (p's first)
// names itself on its destinations.
func captureDestinations(p *port, svcs []*service) []*xdsapi.CaptureDestination {
	seen := map[destination]bool{}
	var out []*xdsapi.CaptureDestination
	for _, svc := range svcs {
		sp, ok := servicePort(svc, p.number)
		if !ok {
			continue
		}
		named := ""
		if onePerPort[p.protocol] && svc != p.services[0] {
			named = svc.host
		}
		for _, d := range serviceDestinations(svc, sp) {
			if !seen[d] {
				seen[d] = true
				out = append(out, &xdsapi.CaptureDestination{Prefix: d.prefix, Port: d.port, Service: named})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		return out[i].Prefix < out[j].Prefix
	})
	return out
}

// sharedPort says why svc can't share port pg, whose protocol's frames
// don't name their service, with Options.CaptureOnly (each service is
// told apart by the destination the client dialed), or "" when it can:
// svc needs destinations of its own, none of which another service of
// the port has.
func sharedPort(pg *port, svc *service, sp v1alpha1.ServicePort) string {
	mine := serviceDestinations(svc, sp)
	if len(mine) == 0 {
		return fmt.Sprintf("port %d already carries %s service %s (ServiceEntry %s/%s); with capture only, a service sharing it needs addresses or endpoint addresses to be told apart by",
			sp.Number, pg.protocol, pg.services[0].host, pg.services[0].entry.Namespace, pg.services[0].entry.Name)
	}
	for _, other := range pg.services {
		osp, ok := servicePort(other, pg.number)
		if !ok {
			continue
		}
		for _, d := range serviceDestinations(other, osp) {
			for _, m := range mine {
				if d == m {
					return fmt.Sprintf("%s port %d already reaches %s service %s (ServiceEntry %s/%s): with capture only, services sharing port %d are told apart by the address dialed",
						d.prefix, d.port, pg.protocol, other.host, other.entry.Namespace, other.entry.Name, sp.Number)
				}
			}
		}
	}
	return ""
}

func servicePort(svc *service, number int32) (v1alpha1.ServicePort, bool) {
	for _, sp := range svc.ports {
		if int32(sp.Number) == number {
			return sp, true
		}
	}
	return v1alpha1.ServicePort{}, false
}
