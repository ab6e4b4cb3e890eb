package kube

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// builtinProtocols are the protocols that need no ApplicationProtocol
// (docs/reference.md, Kinds: "dubbo, thrift and redis need none").
var builtinProtocols = []string{"dubbo", "thrift", "redis"}

// portProtocol returns the meta-protocol a Service port speaks, or "" when
// it is not one metamesh handles. known holds the protocol names in force:
// the built-ins and every ApplicationProtocol's name.
//
// appProtocol wins when it names a known protocol; otherwise the port name
// decides, by one of the prefixes (each followed by "-" or the end):
// "<proto>" (Istio's dubbo-…), "tcp-<proto>" (Aeraki's tcp-dubbo…) and
// "tcp-metaprotocol-<proto>". When several known names fit, the longest one
// is taken, so an ApplicationProtocol "dubbo-v3" beats "dubbo" for a port
// named dubbo-v3-api.
func portProtocol(p corev1.ServicePort, known map[string]bool) string {
	if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
		return ""
	}
	if p.AppProtocol != nil && known[*p.AppProtocol] {
		return *p.AppProtocol
	}
	name := p.Name
	for _, prefix := range []string{"tcp-metaprotocol-", "tcp-", ""} {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		if proto := longestLabelPrefix(rest, known); proto != "" {
			return proto
		}
	}
	return ""
}

// longestLabelPrefix returns the longest name in known that s equals or
// starts with followed by "-".
func longestLabelPrefix(s string, known map[string]bool) string {
	best := ""
	for proto := range known {
		if len(proto) <= len(best) {
			continue
		}
		if s == proto || strings.HasPrefix(s, proto+"-") {
			best = proto
		}
	}
	return best
}
