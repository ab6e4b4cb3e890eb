package authz

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/metamesh/metamesh/protocols"
)

// methodKey is the attribute Operation.Methods match.
const methodKey = "method"

// patternKind is how a Pattern compares a value.
type patternKind uint8

const (
	patExact patternKind = iota
	patPrefix
	patSuffix
	patAny
)

// Pattern is an Istio string pattern: "abc" exactly, "abc*" by prefix,
// "*abc" by suffix, "*" any non-empty value. No pattern matches an empty
// value (an unknown principal or namespace).
type Pattern struct {
	kind  patternKind
	value string
}

// ParsePattern compiles s.
func ParsePattern(s string) (Pattern, error) {
	switch {
	case s == "":
		return Pattern{}, fmt.Errorf("empty pattern")
	case s == "*":
		return Pattern{kind: patAny}, nil
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(s, "*"), "*")
	if strings.Contains(inner, "*") || (strings.HasPrefix(s, "*") && strings.HasSuffix(s, "*")) {
		return Pattern{}, fmt.Errorf("%q: '*' may only be the whole pattern, its first or its last character", s)
	}
	switch {
	case strings.HasPrefix(s, "*"):
		return Pattern{kind: patSuffix, value: s[1:]}, nil
	case strings.HasSuffix(s, "*"):
		return Pattern{kind: patPrefix, value: s[:len(s)-1]}, nil
	}
	return Pattern{kind: patExact, value: s}, nil
}

// Match reports whether v matches p.
func (p Pattern) Match(v string) bool {
	if v == "" {
		return false
	}
	switch p.kind {
	case patPrefix:
		return strings.HasPrefix(v, p.value)
	case patSuffix:
		return strings.HasSuffix(v, p.value)
	case patAny:
		return true
	}
	return v == p.value
}

// anyOf reports whether v matches one of ps.
func anyOf(ps []Pattern, v string) bool {
	for _, p := range ps {
		if p.Match(v) {
			return true
		}
	}
	return false
}

// in applies a list and its negation: v must match one of yes (when
// set) and none of no.
func in(yes, no []Pattern, v string) bool {
	return (len(yes) == 0 || anyOf(yes, v)) && !anyOf(no, v)
}

func inBlocks(yes, no []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	return (len(yes) == 0 || contains(yes, a)) && !contains(no, a)
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (p *Policy) match(service string, h *protocols.Headers, peer *Peer) bool {
	for i := range p.Rules {
		if p.Rules[i].match(service, h, peer) {
			return true
		}
	}
	return false
}

func (r *Rule) match(service string, h *protocols.Headers, peer *Peer) bool {
	from := len(r.From) == 0
	for i := range r.From {
		if r.From[i].match(peer) {
			from = true
			break
		}
	}
	if !from {
		return false
	}
	if len(r.To) == 0 {
		return true
	}
	for i := range r.To {
		if r.To[i].match(service, h) {
			return true
		}
	}
	return false
}

func (s *Source) match(peer *Peer) bool {
	return in(s.Principals, s.NotPrincipals, peer.Principal) &&
		in(s.Namespaces, s.NotNamespaces, peer.Namespace) &&
		inBlocks(s.IPBlocks, s.NotIPBlocks, peer.Addr)
}

func (o *Operation) match(service string, h *protocols.Headers) bool {
	if !in(o.Services, o.NotServices, service) {
		return false
	}
	if len(o.Methods) > 0 || len(o.NotMethods) > 0 {
		method, _ := h.Get(methodKey)
		if !in(o.Methods, o.NotMethods, method) {
			return false
		}
	}
	for i := range o.Attributes {
		if !o.Attributes[i].Match(h) {
			return false
		}
	}
	return true
}
