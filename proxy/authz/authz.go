// Package authz is the compiled, immutable set of authorization policies
// of one listener (docs/authorization.md): deny first, then, when ALLOW
// policies apply to the request's service, one of them must match; AUDIT
// policies and dry-run policies only report. A listener without policies
// has no Engine, so a request costs nothing here.
package authz

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/metamesh/metamesh/protocols"
	"github.com/metamesh/metamesh/proxy/router"
)

// Action is what a policy does with the requests it matches.
type Action uint8

// The actions.
const (
	Allow Action = iota
	Deny
	Audit
)

// Policy is one authorization policy as a listener enforces it.
type Policy struct {
	// Name is "namespace/name": the metrics' policy label and the
	// denial's text.
	Name   string
	Action Action
	DryRun bool
	// Services it applies to; empty: every request of the listener.
	Services []string
	// Rules: the policy matches a request that any rule matches.
	Rules []Rule
}

// UsesIdentity reports whether a rule of p asks for the caller's
// principal or namespace, which only mutual TLS tells.
func (p *Policy) UsesIdentity() bool {
	for _, r := range p.Rules {
		for _, s := range r.From {
			if len(s.Principals)+len(s.NotPrincipals)+len(s.Namespaces)+len(s.NotNamespaces) > 0 {
				return true
			}
		}
	}
	return false
}

// Rule matches a request when any source and any operation match (an
// empty list matches all).
type Rule struct {
	From []Source
	To   []Operation
}

// Source matches the caller; every non-empty field must match.
type Source struct {
	Principals, NotPrincipals []Pattern
	Namespaces, NotNamespaces []Pattern
	IPBlocks, NotIPBlocks     []netip.Prefix
}

// Operation matches the request; every non-empty field must match.
type Operation struct {
	Services, NotServices []Pattern
	Methods, NotMethods   []Pattern
	// Attributes must all match (an inverted matcher must not).
	Attributes []router.Matcher
}

// Peer is what the proxy knows of a caller. Principal and Namespace are
// empty until mutual TLS between proxies tells them.
type Peer struct {
	Addr      netip.Addr
	Principal string
	Namespace string
}

// Decision is the outcome of Check. Each field is nil when it did not
// happen.
type Decision struct {
	// Denied is the policy that refuses the request: a DENY policy that
	// matched, or, when no ALLOW policy matched, their stand-in naming
	// them all (Action Allow).
	Denied *Policy
	// DryRunDenied is a dry-run policy that would have refused a request
	// the enforced policies let through.
	DryRunDenied *Policy
	// Audited is the first AUDIT policy that matched.
	Audited *Policy
}

// set is the policies that apply to one service, by what they do.
type set struct {
	deny, allow, audit []*Policy
	dryDeny, dryAllow  []*Policy
	allowMiss, dryMiss *Policy // the stand-ins naming allow, dryAllow
}

// Engine checks requests against a listener's policies.
type Engine struct {
	byService map[string]*set
	// other applies to services no policy names.
	other *set
}

// New compiles policies, in their order (the first match names a
// denial). Nil when there are none.
func New(policies []*Policy) *Engine {
	if len(policies) == 0 {
		return nil
	}
	e := &Engine{byService: map[string]*set{}, other: &set{}}
	for _, p := range policies {
		for _, s := range p.Services {
			if e.byService[s] == nil {
				e.byService[s] = &set{}
			}
		}
	}
	for _, p := range policies {
		if len(p.Services) == 0 {
			e.other.add(p)
			for _, s := range e.byService {
				s.add(p)
			}
			continue
		}
		for i, svc := range p.Services {
			if !slices.Contains(p.Services[:i], svc) { // a service listed twice gets the policy once
				e.byService[svc].add(p)
			}
		}
	}
	e.other.seal()
	for _, s := range e.byService {
		s.seal()
	}
	return e
}

func (s *set) add(p *Policy) {
	switch {
	case p.Action == Audit:
		s.audit = append(s.audit, p)
	case p.Action == Deny && p.DryRun:
		s.dryDeny = append(s.dryDeny, p)
	case p.Action == Deny:
		s.deny = append(s.deny, p)
	case p.DryRun:
		s.dryAllow = append(s.dryAllow, p)
	default:
		s.allow = append(s.allow, p)
	}
}

// seal makes the stand-ins that name the ALLOW policies a request
// matched none of.
func (s *set) seal() {
	s.allowMiss, s.dryMiss = standIn(s.allow), standIn(s.dryAllow)
}

func standIn(allow []*Policy) *Policy {
	if len(allow) == 0 {
		return nil
	}
	names := make([]string, len(allow))
	for i, p := range allow {
		names[i] = p.Name
	}
	return &Policy{Name: strings.Join(names, ","), Action: Allow, DryRun: allow[0].DryRun}
}

// Labels returns every policy label Check's decisions can carry: the
// policies' names and the stand-ins naming a service's ALLOW policies.
func (e *Engine) Labels() []string {
	var out []string
	add := func(s *set) {
		for _, list := range [][]*Policy{s.deny, s.allow, s.audit, s.dryDeny, s.dryAllow, {s.allowMiss, s.dryMiss}} {
			for _, p := range list {
				if p != nil && !slices.Contains(out, p.Name) {
					out = append(out, p.Name)
				}
			}
		}
	}
	add(e.other)
	for _, s := range e.byService {
		add(s)
	}
	return out
}

// Check decides on a request served as target (the service whose routes
// serve it, which selects the policies) that names service (which
// operations match) with attributes h, from peer. The two differ when a
// port serves one service whatever service name requests carry.
func (e *Engine) Check(target, service string, h *protocols.Headers, peer *Peer) Decision {
	s, ok := e.byService[target]
	if !ok {
		s = e.other
	}
	var d Decision
	for _, p := range s.audit {
		if p.match(service, h, peer) {
			d.Audited = p
			break
		}
	}
	for _, p := range s.deny {
		if p.match(service, h, peer) {
			d.Denied = p
			return d
		}
	}
	matched := false
	for _, p := range s.allow {
		if p.match(service, h, peer) {
			matched = true
			break
		}
	}
	if len(s.allow) > 0 && !matched {
		d.Denied = s.allowMiss
		return d
	}
	for _, p := range s.dryDeny {
		if p.match(service, h, peer) {
			d.DryRunDenied = p
			return d
		}
	}
	// A dry-run ALLOW can't take back what an enforced ALLOW grants.
	if len(s.dryAllow) == 0 || matched {
		return d
	}
	for _, p := range s.dryAllow {
		if p.match(service, h, peer) {
			return d
		}
	}
	d.DryRunDenied = s.dryMiss
	return d
}
