// Package router is the compiled, immutable route table: virtual hosts
// chosen by a request's service, ordered routes matched on attributes, and
// the weighted pick of a destination cluster.
package router

import (
	"regexp"
	"strings"

	"github.com/metamesh/metamesh/protocols"
)

// MatchKind is how a Matcher compares an attribute.
type MatchKind uint8

// The matcher kinds. Regex matches the whole value (RE2).
const (
	MatchExact MatchKind = iota + 1
	MatchPrefix
	MatchSuffix
	MatchContains
	MatchRegex
	MatchPresent
)

// Matcher tests one attribute of a request.
type Matcher struct {
	Name   string
	Kind   MatchKind
	Value  string
	Invert bool
	re     *regexp.Regexp
}

// NewRegexMatcher compiles pattern anchored to the whole value.
func NewRegexMatcher(name, pattern string, invert bool) (Matcher, error) {
	// Compile the pattern alone first: wrapped unchecked, "a)|(b" would
	// compile as ^(?:a)|(b)$ and escape the anchoring.
	if _, err := regexp.Compile(pattern); err != nil {
		return Matcher{}, err
	}
	re, err := regexp.Compile(`^(?:` + pattern + `)$`)
	if err != nil {
		return Matcher{}, err
	}
	return Matcher{Name: name, Kind: MatchRegex, Value: pattern, Invert: invert, re: re}, nil
}

// Match reports whether h satisfies m. An absent attribute never matches a
// value matcher; with Invert it does.
func (m *Matcher) Match(h *protocols.Headers) bool {
	v, ok := h.Get(m.Name)
	return m.test(v, ok) != m.Invert
}

func (m *Matcher) test(v string, ok bool) bool {
	if !ok {
		return false
	}
	switch m.Kind {
	case MatchExact:
		return v == m.Value
	case MatchPrefix:
		return strings.HasPrefix(v, m.Value)
	case MatchSuffix:
		return strings.HasSuffix(v, m.Value)
	case MatchContains:
		return strings.Contains(v, m.Value)
	case MatchRegex:
		return m.re.MatchString(v)
	case MatchPresent:
		return true
	}
	return false
}
