package translate

import (
	"fmt"

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
		if svc.policy != nil {
			t.conflict(key, "spec.host", svc.polKey, fmt.Sprintf("%s already has DestinationPolicy %s/%s", dp.Spec.Host, svc.policy.Namespace, svc.policy.Name))
			continue
		}
		svc.policy, svc.polKey = dp, key
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
		attached := 0
		for i, h := range mr.Spec.Hosts {
			svc, ok := t.services[string(h)]
			if !ok {
				t.unresolved(key, v1alpha1.ReasonUnknownHost, fmt.Sprintf("spec.hosts[%d]: no ServiceEntry defines %s", i, h))
				continue
			}
			if svc.router != nil {
				t.conflict(key, fmt.Sprintf("spec.hosts[%d]", i), svc.routKey, fmt.Sprintf("%s is already routed by MetaRouter %s/%s", h, svc.router.Namespace, svc.router.Name))
				continue
			}
			svc.router, svc.routKey = mr, key
			attached++
		}
		if attached == 0 && len(t.st(key).accepted) == 0 {
			t.reject(key, v1alpha1.ReasonUnknownHost, "spec.hosts: none of the hosts is defined by a ServiceEntry")
		}
	}
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
