package iptables

import (
	"fmt"
	"strings"
)

// Family is an address family: its rules are applied with its own tools.
type Family int

// The two families.
const (
	IPv4 Family = iota
	IPv6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// chains returns the chains c uses, in the order they are declared.
func (c *Config) chains() []string {
	out := []string{ChainOutput, ChainRedirect}
	if c.CaptureInbound {
		out = append(out, ChainInbound, ChainInRedirect)
	}
	return out
}

// jumps returns the rules, in iptables-restore syntax without "-A", that
// lead from the built-in chains into ours.
func (c *Config) jumps() []string {
	out := []string{builtinOutput + " -p tcp -j " + ChainOutput}
	if c.CaptureInbound {
		out = append(out, builtinPrerouting+" -p tcp -j "+ChainInbound)
	}
	return out
}

// rules returns the rules of our chains for one family, each as the
// arguments of "-A".
//
// Outbound: the proxy's own connections (its UID) return first, so the
// proxy never captures itself; then everything leaving through the
// loopback interface: 127.0.0.0/8 and ::1, and also the pod's own
// addresses, whose route is lo too. A call from the application to
// itself is not mesh traffic, and leaving it alone keeps the inbound
// proxy's forwarding to 127.0.0.1 out of the capture whatever its UID.
// Then the excluded networks and ports; whatever is left is redirected.
//
// Inbound: the proxy's two capture ports are never captured (a
// connection to the inbound port redirected to itself would be forwarded
// to itself for ever), then the excluded ports; the rest is redirected.
func (c *Config) rules(f Family) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	add("%s -p tcp -j REDIRECT --to-ports %d", ChainRedirect, c.OutboundPort)
	add("%s -m owner --uid-owner %d -j RETURN", ChainOutput, c.ProxyUID)
	add("%s -o lo -j RETURN", ChainOutput)
	for _, p := range c.ExcludeOutboundCIDRs {
		if p.Addr().Unmap().Is4() == (f == IPv4) {
			add("%s -d %s -j RETURN", ChainOutput, p.Masked())
		}
	}
	for _, p := range c.ExcludeOutboundPorts {
		add("%s -p tcp --dport %d -j RETURN", ChainOutput, p)
	}
	add("%s -j %s", ChainOutput, ChainRedirect)
	if !c.CaptureInbound {
		return out
	}
	add("%s -p tcp -j REDIRECT --to-ports %d", ChainInRedirect, c.InboundPort)
	for _, p := range c.inboundExclusions() {
		add("%s -p tcp --dport %d -j RETURN", ChainInbound, p)
	}
	add("%s -p tcp -j %s", ChainInbound, ChainInRedirect)
	return out
}

// inboundExclusions are the capture ports then the excluded inbound ports,
// each once.
func (c *Config) inboundExclusions() []uint16 {
	seen := map[uint16]bool{}
	var out []uint16
	for _, p := range append([]uint16{c.OutboundPort, c.InboundPort}, c.ExcludeInboundPorts...) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Render returns the iptables-restore input (for `iptables-restore
// --noflush`, or ip6tables-restore for IPv6) that installs c's rules in a
// namespace that has none of ours: what --dry-run prints. Apply sends the
// same lines, plus the deletions of whatever of ours is already there.
func Render(c Config, f Family) string {
	return script(&c, f, state{})
}

// script is the restore input that takes a namespace from have to c's
// rules: our chains are declared (which creates them, or flushes them
// if they exist), the old jumps into them deleted, chains of ours c
// does not use flushed and deleted, then every rule appended.
func script(c *Config, f Family, have state) string {
	var b strings.Builder
	b.WriteString("*nat\n")
	want := c.chains()
	for _, ch := range want {
		fmt.Fprintf(&b, ":%s - [0:0]\n", ch)
	}
	for _, j := range have.jumps {
		fmt.Fprintf(&b, "-D %s\n", j)
	}
	var stale []string
	for _, ch := range have.chains {
		if !contains(want, ch) {
			stale = append(stale, ch)
		}
	}
	for _, ch := range stale {
		fmt.Fprintf(&b, "-F %s\n", ch)
	}
	for _, ch := range stale {
		fmt.Fprintf(&b, "-X %s\n", ch)
	}
	for _, r := range c.rules(f) {
		fmt.Fprintf(&b, "-A %s\n", r)
	}
	for _, j := range c.jumps() {
		fmt.Fprintf(&b, "-A %s\n", j)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// cleanScript is the restore input that removes everything of ours in
// have, or "" when there is nothing.
func cleanScript(have state) string {
	if len(have.jumps) == 0 && len(have.chains) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("*nat\n")
	for _, j := range have.jumps {
		fmt.Fprintf(&b, "-D %s\n", j)
	}
	for _, ch := range have.chains {
		fmt.Fprintf(&b, "-F %s\n", ch)
	}
	for _, ch := range have.chains {
		fmt.Fprintf(&b, "-X %s\n", ch)
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
