// Package iptables builds and applies the NAT rules that send a pod's TCP
// traffic through its sidecar proxy: outbound connections to the proxy's
// outbound capture port, and optionally inbound ones to its inbound capture
// port, with REDIRECT (the proxy reads the original destination with
// SO_ORIGINAL_DST). Everything lives in chains of its own, named METAMESH_*,
// reached by one jump from OUTPUT and one from PREROUTING, so applying is
// idempotent and Clean removes exactly what Apply added.
//
// The rules go in with one iptables-restore --noflush per address family:
// atomic (a namespace has all of them or none), one process instead of one
// per rule, and the text Render prints for --dry-run is the text applied.
package iptables

import (
	"errors"
	"fmt"
	"net/netip"
)

// Defaults of Config, the ports and UID Istio's sidecars use too, so that
// operators' habits carry over.
const (
	DefaultProxyUID     = 1337
	DefaultOutboundPort = 15001
	DefaultInboundPort  = 15006
)

// Chains metamesh owns. Clean removes every chain whose name starts with
// ChainPrefix, whichever of them an older version made.
const (
	ChainPrefix       = "METAMESH_"
	ChainOutput       = "METAMESH_OUTPUT"      // jumped to from OUTPUT: decides what to capture
	ChainRedirect     = "METAMESH_REDIRECT"    // REDIRECT to the outbound port
	ChainInbound      = "METAMESH_INBOUND"     // jumped to from PREROUTING: decides what to capture
	ChainInRedirect   = "METAMESH_IN_REDIRECT" // REDIRECT to the inbound port
	builtinOutput     = "OUTPUT"
	builtinPrerouting = "PREROUTING"
)

// Config says what to capture.
type Config struct {
	// ProxyUID is the user the proxy runs as: its connections are never
	// captured, which is what keeps the proxy's own upstream connections
	// from looping back into it.
	ProxyUID uint32
	// OutboundPort is where captured outbound connections go (on the
	// loopback address of their family).
	OutboundPort uint16
	// InboundPort is where captured inbound connections go, with
	// CaptureInbound.
	InboundPort uint16
	// CaptureInbound also redirects TCP arriving from outside the namespace.
	CaptureInbound bool
	// ExcludeOutboundPorts are destination ports never captured outbound.
	ExcludeOutboundPorts []uint16
	// ExcludeOutboundCIDRs are destination networks never captured; each
	// applies to the rules of its own address family.
	ExcludeOutboundCIDRs []netip.Prefix
	// ExcludeInboundPorts are local ports never captured inbound.
	ExcludeInboundPorts []uint16
}

// DefaultConfig is the Config of `metamesh iptables` without flags.
func DefaultConfig() Config {
	return Config{ProxyUID: DefaultProxyUID, OutboundPort: DefaultOutboundPort, InboundPort: DefaultInboundPort}
}

// Validate reports a Config the rules can't be built from.
func (c *Config) Validate() error {
	var errs []error
	if c.OutboundPort == 0 {
		errs = append(errs, errors.New("iptables: outbound port: must be 1-65535"))
	}
	if c.CaptureInbound && c.InboundPort == 0 {
		errs = append(errs, errors.New("iptables: inbound port: must be 1-65535"))
	}
	if c.CaptureInbound && c.InboundPort == c.OutboundPort {
		errs = append(errs, fmt.Errorf("iptables: inbound and outbound port are both %d", c.InboundPort))
	}
	for _, p := range c.ExcludeOutboundCIDRs {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("iptables: excluded CIDR %v: invalid", p))
		}
	}
	return errors.Join(errs...)
}
