package translate

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// authzPolicy is one AuthorizationPolicy and the services it protects.
type authzPolicy struct {
	key      string
	obj      *v1alpha1.AuthorizationPolicy
	services map[string]bool
	proto    *xdsapi.AuthorizationPolicy // without services: per listener
}

// attachAuthorization resolves each AuthorizationPolicy to the services it
// protects: its hosts, or with none every service of its namespace (of
// the mesh for the root namespace). A policy outside the root namespace
// protects only services defined in its own namespace.
func (t *translation) attachAuthorization() {
	rootNS := cmp.Or(t.opts.RootNamespace, v1alpha1.RootNamespace)
	for _, ap := range t.in.AuthorizationPolicies {
		key := keyOf(v1alpha1.KindAuthorizationPolicy, &ap.ObjectMeta)
		t.st(key)
		root := ap.Namespace == rootNS
		p := &authzPolicy{key: key, obj: ap, services: map[string]bool{}, proto: authorizationPolicy(ap)}
		if len(ap.Spec.Hosts) == 0 {
			for h, svc := range t.services {
				if root || svc.entry.Namespace == ap.Namespace {
					p.services[h] = true
				}
			}
		}
		for i, h := range ap.Spec.Hosts {
			svc, ok := t.services[string(h)]
			switch {
			case !ok:
				t.unresolved(key, v1alpha1.ReasonUnknownHost, fmt.Sprintf("spec.hosts[%d]: no ServiceEntry defines %s", i, h))
			case !root && svc.entry.Namespace != ap.Namespace:
				t.unresolved(key, v1alpha1.ReasonUnknownHost, fmt.Sprintf("spec.hosts[%d]: %s is defined in namespace %s; a policy protects its own namespace's services (or, in %s, the mesh's)",
					i, h, svc.entry.Namespace, rootNS))
			default:
				p.services[string(h)] = true
			}
		}
		if len(ap.Spec.Hosts) > 0 && len(p.services) == 0 {
			t.reject(key, v1alpha1.ReasonUnknownHost, "spec.hosts: none of the hosts is a service this policy may protect")
			continue
		}
		t.authz = append(t.authz, p)
	}
}

// authorization returns what a listener of protocol serving svcs enforces:
// every policy that protects one of them, narrowed to them (nil when none
// does). Any listener serving services calls it: the service listeners of
// `run` and gateways, and a sidecar's inbound listeners.
func (t *translation) authorization(protocol string, svcs []*service) *xdsapi.Authorization {
	var out *xdsapi.Authorization
	for _, p := range t.authz {
		if ps := p.obj.Spec.Protocols; len(ps) > 0 && !slices.Contains(ps, v1alpha1.Name(protocol)) {
			continue
		}
		var hosts []string
		for _, svc := range svcs {
			if p.services[svc.host] {
				hosts = append(hosts, svc.host)
			}
		}
		if len(hosts) == 0 {
			continue
		}
		if out == nil {
			out = &xdsapi.Authorization{}
		}
		slices.Sort(hosts)
		// The rules are shared between listeners: resources are read-only.
		out.Policies = append(out.Policies, &xdsapi.AuthorizationPolicy{
			Name: p.proto.Name, Action: p.proto.Action, DryRun: p.proto.DryRun, Rules: p.proto.Rules, Services: hosts,
		})
	}
	return out
}

var authzActions = map[v1alpha1.AuthorizationAction]xdsapi.AuthorizationPolicy_Action{
	"":                   xdsapi.AuthorizationPolicy_ALLOW,
	v1alpha1.ActionAllow: xdsapi.AuthorizationPolicy_ALLOW,
	v1alpha1.ActionDeny:  xdsapi.AuthorizationPolicy_DENY,
	v1alpha1.ActionAudit: xdsapi.AuthorizationPolicy_AUDIT,
}

// authorizationPolicy translates ap's action and rules.
func authorizationPolicy(ap *v1alpha1.AuthorizationPolicy) *xdsapi.AuthorizationPolicy {
	out := &xdsapi.AuthorizationPolicy{
		Name:   ap.Namespace + "/" + ap.Name,
		Action: authzActions[ap.Spec.Action],
		DryRun: ap.Spec.DryRun,
	}
	for _, r := range ap.Spec.Rules {
		rule := &xdsapi.AuthorizationRule{}
		for _, f := range r.From {
			rule.From = append(rule.From, &xdsapi.AuthorizationSource{
				Principals: f.Principals, NotPrincipals: f.NotPrincipals,
				Namespaces: f.Namespaces, NotNamespaces: f.NotNamespaces,
				IpBlocks: f.IPBlocks, NotIpBlocks: f.NotIPBlocks,
			})
		}
		for _, o := range r.To {
			op := &xdsapi.AuthorizationOperation{
				Services: o.Services, NotServices: o.NotServices,
				Methods: o.Methods, NotMethods: o.NotMethods,
				Attributes: attributeMatches(o.Attributes),
			}
			for _, am := range attributeMatches(o.NotAttributes) {
				am.Invert = true
				op.Attributes = append(op.Attributes, am)
			}
			rule.To = append(rule.To, op)
		}
		out.Rules = append(out.Rules, rule)
	}
	return out
}
