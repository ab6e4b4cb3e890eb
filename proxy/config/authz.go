package config

import (
	"fmt"
	"net/netip"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/authz"
)

var authzActions = map[xdsapi.AuthorizationPolicy_Action]authz.Action{
	xdsapi.AuthorizationPolicy_ALLOW: authz.Allow,
	xdsapi.AuthorizationPolicy_DENY:  authz.Deny,
	xdsapi.AuthorizationPolicy_AUDIT: authz.Audit,
}

// authorization compiles a listener's Authorization (nil: none). path
// names it in errors.
func authorization(a *xdsapi.Authorization, path string) (all, outbound *authz.Engine, err error) {
	var policies []*authz.Policy
	for i, p := range a.GetPolicies() {
		pp := fmt.Sprintf("%s.policies[%d]", path, i)
		if p.GetName() == "" {
			return nil, nil, fmt.Errorf("%s.name: required", pp)
		}
		action, ok := authzActions[p.GetAction()]
		if !ok {
			return nil, nil, fmt.Errorf("%s.action: unknown action %d", pp, p.GetAction())
		}
		out := &authz.Policy{Name: p.GetName(), Action: action, DryRun: p.GetDryRun(), Services: p.GetServices()}
		for j, r := range p.GetRules() {
			rule, err := authzRule(r, fmt.Sprintf("%s.rules[%d]", pp, j))
			if err != nil {
				return nil, nil, err
			}
			out.Rules = append(out.Rules, rule)
		}
		policies = append(policies, out)
	}
	// A sidecar's outbound side knows no caller identity (its caller is
	// its own workload, over plaintext): the policies that ask for one are
	// judged by the destination's inbound side, where mutual TLS tells it
	// (docs/authorization.md, "Where it is enforced").
	var anonymous []*authz.Policy
	for _, p := range policies {
		if !p.UsesIdentity() {
			anonymous = append(anonymous, p)
		}
	}
	all = authz.New(policies)
	if len(anonymous) == len(policies) {
		return all, all, nil
	}
	return all, authz.New(anonymous), nil
}

func authzRule(r *xdsapi.AuthorizationRule, path string) (authz.Rule, error) {
	var out authz.Rule
	var err error
	for i, f := range r.GetFrom() {
		p := fmt.Sprintf("%s.from[%d]", path, i)
		var s authz.Source
		if s.Principals, err = patterns(f.GetPrincipals(), p+".principals"); err != nil {
			return out, err
		}
		if s.NotPrincipals, err = patterns(f.GetNotPrincipals(), p+".not_principals"); err != nil {
			return out, err
		}
		if s.Namespaces, err = patterns(f.GetNamespaces(), p+".namespaces"); err != nil {
			return out, err
		}
		if s.NotNamespaces, err = patterns(f.GetNotNamespaces(), p+".not_namespaces"); err != nil {
			return out, err
		}
		if s.IPBlocks, err = ipBlocks(f.GetIpBlocks(), p+".ip_blocks"); err != nil {
			return out, err
		}
		if s.NotIPBlocks, err = ipBlocks(f.GetNotIpBlocks(), p+".not_ip_blocks"); err != nil {
			return out, err
		}
		out.From = append(out.From, s)
	}
	for i, o := range r.GetTo() {
		p := fmt.Sprintf("%s.to[%d]", path, i)
		var op authz.Operation
		if op.Services, err = patterns(o.GetServices(), p+".services"); err != nil {
			return out, err
		}
		if op.NotServices, err = patterns(o.GetNotServices(), p+".not_services"); err != nil {
			return out, err
		}
		if op.Methods, err = patterns(o.GetMethods(), p+".methods"); err != nil {
			return out, err
		}
		if op.NotMethods, err = patterns(o.GetNotMethods(), p+".not_methods"); err != nil {
			return out, err
		}
		for k, am := range o.GetAttributes() {
			m, err := attributeMatcher(am)
			if err != nil {
				return out, fmt.Errorf("%s.attributes[%d]: %w", p, k, err)
			}
			op.Attributes = append(op.Attributes, m)
		}
		out.To = append(out.To, op)
	}
	return out, nil
}

func patterns(ss []string, path string) ([]authz.Pattern, error) {
	var out []authz.Pattern
	for i, s := range ss {
		p, err := authz.ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", path, i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// ipBlocks parses addresses (as one-address ranges) and CIDR ranges.
func ipBlocks(ss []string, path string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %q is neither an IP address nor a CIDR range", path, i, s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
