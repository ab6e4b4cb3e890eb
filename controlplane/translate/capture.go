package translate

import (
	"net/netip"
	"sort"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// captureDestinations lists what a client may dial to reach svcs on port
// number, for proxies that capture connections (mesh mode): each
// service's addresses on the port's number, and each endpoint with an IP
// address on its own port for it. DNS-named endpoints are left out (the
// original destination of a connection is an address).
func captureDestinations(number int32, svcs []*service) []*xdsapi.CaptureDestination {
	type key struct {
		prefix string
		port   uint32
	}
	seen := map[key]bool{}
	var out []*xdsapi.CaptureDestination
	add := func(prefix string, port uint32) {
		if k := (key{prefix, port}); !seen[k] {
			seen[k] = true
			out = append(out, &xdsapi.CaptureDestination{Prefix: prefix, Port: port})
		}
	}
	for _, svc := range svcs {
		sp, ok := servicePort(svc, number)
		if !ok {
			continue
		}
		for _, a := range svc.entry.Spec.Addresses {
			add(a, uint32(number))
		}
		for _, ep := range svc.entry.Spec.Endpoints {
			if _, err := netip.ParseAddr(ep.Address); err != nil {
				continue
			}
			n := uint32(sp.Number)
			if m, ok := ep.Ports[string(sp.Name)]; ok {
				n = uint32(m)
			}
			add(ep.Address, n)
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

func servicePort(svc *service, number int32) (v1alpha1.ServicePort, bool) {
	for _, sp := range svc.ports {
		if int32(sp.Number) == number {
			return sp, true
		}
	}
	return v1alpha1.ServicePort{}, false
}
