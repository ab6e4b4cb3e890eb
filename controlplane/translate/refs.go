package translate

import (
	"fmt"
	"slices"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// attachPolicies attaches each DestinationPolicy to its host.
func (t *translation) attachPolicies() {
	for _, dp := range t.in.DestinationPolicies {
		key := keyOf("DestinationPolicy", &dp.ObjectMeta)
		t.st(key)
		svc, ok := t.services[string(dp.Spec.Host)]
		if !ok {
			t.unresolved(key, v1alpha1.ReasonUnknownHost, fmt.Sprintf("spec.host: no ServiceEntry defines %s", dp.Spec.Host))
			t.reject(key, v1alpha1.ReasonUnknownHost, fmt.Sprintf("spec.host: %s is unknown", dp.Spec.Host))
			continue
		}
		a := attached[*v1alpha1.DestinationPolicy]{obj: dp, key: key, exports: exportsOf(dp.Spec.ExportTo, dp.Namespace), gateways: gatewaySet{any: true}}
		if held := claim(&svc.policies, a); held != nil {
			t.conflict(key, "spec.host", held.key, fmt.Sprintf("%s already has DestinationPolicy %s/%s%s", dp.Spec.Host, held.obj.Namespace, held.obj.Name, overlap(held.exports, a.exports)))
			continue
		}
		if cp := dp.Spec.ConnectionPool; cp != nil && cp.IdleTimeout != nil {
			t.note(key, "spec.connectionPool.idleTimeout is not enforced yet")
		}
	}
}

// attachRouters attaches each MetaRouter to its hosts.
func (t *translation) attachRouters() {
	for _, mr := range t.in.MetaRouters {
		key := keyOf("MetaRouter", &mr.ObjectMeta)
		t.st(key)
		if !t.resolveLimit(mr, key) {
			continue
		}
		n := 0
		for i, h := range mr.Spec.Hosts {
			svc, ok := t.services[string(h)]
			if !ok {
				t.unresolved(key, v1alpha1.ReasonUnknownHost, fmt.Sprintf("spec.hosts[%d]: no ServiceEntry defines %s", i, h))
				continue
			}
			a := attached[*v1alpha1.MetaRouter]{obj: mr, key: key, exports: exportsOf(mr.Spec.ExportTo, mr.Namespace), gateways: gatewaysOf(mr.Spec.Gateways, mr.Namespace)}
			if held := claim(&svc.routers, a); held != nil {
				t.conflict(key, fmt.Sprintf("spec.hosts[%d]", i), held.key, fmt.Sprintf("%s is already routed by MetaRouter %s/%s%s%s", h, held.obj.Namespace, held.obj.Name,
					overlap(held.exports, a.exports), gatewayOverlap(held.gateways, a.gateways)))
				continue
			}
			if t.limits[mr] != nil && !slices.Contains(t.limited, svc) {
				t.limited = append(t.limited, svc)
			}
			n++
		}
		if n == 0 && len(t.st(key).accepted) == 0 {
			t.reject(key, v1alpha1.ReasonUnknownHost, "spec.hosts: none of the hosts is defined by a ServiceEntry")
		}
	}
}

// overlap says, in a conflict message, why two objects with exportTo
// clash: "" when both are exported everywhere (the usual case).
func overlap(held, refused exportSet) string {
	if held.all && refused.all {
		return ""
	}
	return fmt.Sprintf(" exported to %s (this one is exported to %s)", held, refused)
}

// gatewayOverlap says, in a conflict message, why two MetaRouters with
// gateways clash: "" when both apply to the sidecars only (the usual
// case).
func gatewayOverlap(held, refused gatewaySet) string {
	meshOnly := func(g gatewaySet) bool { return g.mesh && !g.any && len(g.names) == 0 }
	if meshOnly(held) && meshOnly(refused) {
		return ""
	}
	return fmt.Sprintf(" for %s (this one is for %s)", held, refused)
}

// subsetLabels returns the labels of subset on svc, or false.
func subsetLabels(svc *service, subset string) (map[string]string, bool) {
	if svc.policy == nil {
		return nil, false
	}
	for _, s := range svc.policy.Spec.Subsets {
		if string(s.Name) == subset {
			return s.Labels, true
		}
	}
	return nil, false
}
