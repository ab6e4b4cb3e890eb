package registry

import (
	"fmt"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/translate"
	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// MadeNamespace is the namespace of the ServiceEntries made for
// interfaces that have none.
const MadeNamespace = metav1.NamespaceDefault

// MadePrefix starts the name of every ServiceEntry made for an interface.
const MadePrefix = "registry-"

// Merged is the Input of a config source with the registries' providers
// merged in.
type Merged struct {
	Input *translate.Input
	// Notes say what of the registries could not be applied and why, one
	// line each, sorted (for logs).
	Notes []string
}

// Merge merges providers into base, which it does not modify: a
// ServiceEntry of one host with no endpoints takes that host's providers
// as endpoints (on its dubbo port, else its first); a host that no
// ServiceEntry names gets one made for it (MadePrefix + the interface, in
// MadeNamespace, port dubbo with protocol dubbo: listenPorts[registry] if
// set, else the port most of its providers use). A ServiceEntry with
// endpoints of its own keeps them: the registry is not consulted for it.
// A provider seen in several registries is one endpoint. The Input's
// ServiceEntries are base's first, in order (each itself or its filled
// copy), then the made ones.
func Merge(base *translate.Input, providers []Provider, listenPorts map[string]int) Merged {
	byHost := group(providers)
	in := *base
	in.ServiceEntries = make([]*v1alpha1.ServiceEntry, 0, len(base.ServiceEntries)+len(byHost))
	var notes []string
	defined := make(map[string]bool, len(byHost))
	for _, se := range base.ServiceEntries {
		for _, h := range se.Spec.Hosts {
			defined[string(h)] = true
		}
		if len(se.Spec.Endpoints) > 0 || len(se.Spec.Ports) == 0 {
			in.ServiceEntries = append(in.ServiceEntries, se)
			continue
		}
		if len(se.Spec.Hosts) != 1 {
			for _, h := range se.Spec.Hosts {
				if len(byHost[string(h)]) > 0 {
					notes = append(notes, fmt.Sprintf("ServiceEntry %s/%s: names %d hosts, so it does not take the registry's providers of %s (give the interface a ServiceEntry of its own)",
						se.Namespace, se.Name, len(se.Spec.Hosts), h))
				}
			}
			in.ServiceEntries = append(in.ServiceEntries, se)
			continue
		}
		eps := byHost[string(se.Spec.Hosts[0])]
		if len(eps) == 0 {
			in.ServiceEntries = append(in.ServiceEntries, se)
			continue
		}
		filled := se.DeepCopy()
		filled.Spec.Endpoints = endpoints(eps, portName(se.Spec.Ports))
		annotate(filled, eps)
		in.ServiceEntries = append(in.ServiceEntries, filled)
	}
	hosts := make([]string, 0, len(byHost))
	for h := range byHost {
		if !defined[h] {
			hosts = append(hosts, h)
		}
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		in.ServiceEntries = append(in.ServiceEntries, made(h, byHost[h], listenPorts))
	}
	sort.Strings(notes)
	return Merged{Input: &in, Notes: notes}
}

// merged is one endpoint: a provider and every registry that lists it.
type merged struct {
	Provider
	registries []string
}

// group dedups providers (see Provider.key) and groups them by host, each
// host's endpoints sorted by address, port, group and version.
func group(providers []Provider) map[string][]*merged {
	sorted := make([]Provider, len(providers))
	copy(sorted, providers)
	sortProviders(sorted)
	out := map[string][]*merged{}
	var last *merged
	lastKey := ""
	for _, p := range sorted {
		if k := p.key(); last != nil && lastKey == k {
			if p.Registry != last.registries[len(last.registries)-1] {
				last.registries = append(last.registries, p.Registry)
			}
			continue
		}
		last = &merged{Provider: p, registries: []string{p.Registry}}
		lastKey = p.key()
		out[p.Interface] = append(out[p.Interface], last)
	}
	return out
}

// portName is the port registry endpoints are reached on: the first dubbo
// port, else the first port.
func portName(ports []v1alpha1.ServicePort) string {
	for _, p := range ports {
		if p.Protocol == "dubbo" {
			return string(p.Name)
		}
	}
	return string(ports[0].Name)
}

func endpoints(eps []*merged, port string) []v1alpha1.Endpoint {
	out := make([]v1alpha1.Endpoint, 0, len(eps))
	for _, m := range eps {
		ep := v1alpha1.Endpoint{
			Address: m.Address,
			Ports:   map[string]v1alpha1.PortNumber{port: v1alpha1.PortNumber(m.Port)},
			Labels:  Labels(m.Provider),
		}
		if w, ok := weight(m.Provider); ok {
			ep.Weight = &w
		}
		out = append(out, ep)
	}
	return out
}

// annotate records on se which registries its endpoints came from.
func annotate(se *v1alpha1.ServiceEntry, eps []*merged) {
	seen := map[string]bool{}
	var regs []string
	for _, m := range eps {
		for _, r := range m.registries {
			if !seen[r] {
				seen[r] = true
				regs = append(regs, r)
			}
		}
	}
	sort.Strings(regs)
	if se.Annotations == nil {
		se.Annotations = map[string]string{}
	}
	se.Annotations[RegistryAnnotation] = strings.Join(regs, ",")
}

// made is the ServiceEntry of a host that has none.
func made(host string, eps []*merged, listenPorts map[string]int) *v1alpha1.ServiceEntry {
	se := &v1alpha1.ServiceEntry{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "ServiceEntry"},
		ObjectMeta: metav1.ObjectMeta{Name: MadeName(host), Namespace: MadeNamespace},
		Spec: v1alpha1.ServiceEntrySpec{
			Hosts:     []v1alpha1.Host{v1alpha1.Host(host)},
			Ports:     []v1alpha1.ServicePort{{Number: v1alpha1.PortNumber(listenPort(eps, listenPorts)), Name: "dubbo", Protocol: "dubbo"}},
			Endpoints: endpoints(eps, "dubbo"),
		},
	}
	annotate(se, eps)
	return se
}

// listenPort is the port a made ServiceEntry listens on: that of the
// first of its registries (by URL) that sets one, else the port most of
// its providers use (the lowest of a tie).
func listenPort(eps []*merged, listenPorts map[string]int) int {
	var regs []string
	for _, m := range eps {
		for _, r := range m.registries {
			if listenPorts[r] != 0 {
				regs = append(regs, r)
			}
		}
	}
	if len(regs) > 0 {
		sort.Strings(regs)
		return listenPorts[regs[0]]
	}
	best := 0
	count := map[int]int{}
	for _, m := range eps {
		count[m.Port]++
	}
	for p, n := range count {
		if best == 0 || n > count[best] || n == count[best] && p < best {
			best = p
		}
	}
	return best
}

// MadeName is the name of the ServiceEntry made for an interface: MadePrefix
// and the interface in lower case, each run of characters other than
// letters and digits as one '-'.
func MadeName(iface string) string {
	var b strings.Builder
	b.WriteString(MadePrefix)
	dash := false
	for _, r := range strings.ToLower(iface) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.TrimRight(b.String(), "-")
	if len(name) > 253 {
		name = strings.TrimRight(name[:253], "-")
	}
	return name
}

// UnreachableAnnotation is set on a ServiceEntry whose endpoints (made or
// filled) come from a registry that is unreachable: "endpoints are the last
// known from URL since TIME" (RFC 3339, UTC), "; "-separated when several
// of its registries are. It goes when they answer again.
const UnreachableAnnotation = "metamesh.io/registry-unreachable"

// flagUnreachable sets UnreachableAnnotation on the ServiceEntries of in
// that took endpoints from a registry in down (its URL → when it went away),
// replacing each flagged one with a copy; providers are those merged into
// in. It returns the flagged ones' messages by key (translate.Key).
func flagUnreachable(in *translate.Input, providers []Provider, down map[string]time.Time) map[string]string {
	if len(down) == 0 {
		return nil
	}
	regsOf := map[string]map[string]bool{}
	for _, p := range providers {
		if _, ok := down[p.Registry]; ok {
			if regsOf[p.Interface] == nil {
				regsOf[p.Interface] = map[string]bool{}
			}
			regsOf[p.Interface][p.Registry] = true
		}
	}
	flagged := map[string]string{}
	for i, se := range in.ServiceEntries {
		// Only the ServiceEntries Merge filled or made take registry
		// endpoints; each names one host.
		if _, ok := se.Annotations[RegistryAnnotation]; !ok || len(se.Spec.Hosts) != 1 {
			continue
		}
		var regs []string
		for r := range regsOf[string(se.Spec.Hosts[0])] {
			regs = append(regs, r)
		}
		if len(regs) == 0 {
			continue
		}
		sort.Strings(regs)
		msgs := make([]string, len(regs))
		for j, r := range regs {
			msgs[j] = fmt.Sprintf("endpoints are the last known from %s since %s", r, down[r].UTC().Format(time.RFC3339))
		}
		cp := se.DeepCopy()
		msg := strings.Join(msgs, "; ")
		cp.Annotations[UnreachableAnnotation] = msg
		in.ServiceEntries[i] = cp
		flagged[translate.Key("ServiceEntry", se.Namespace, se.Name)] = msg
	}
	return flagged
}
