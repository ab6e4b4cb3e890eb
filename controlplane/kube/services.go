package kube

import (
	"cmp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// HostsAnnotation on a Service adds hosts (comma-separated) to the ones the
// Service gets by its DNS name: for Dubbo, the interfaces it serves, which is
// what requests name and what tells apart several Dubbo Services sharing a
// port number.
const HostsAnnotation = "metamesh.io/hosts"

// servicePrefix starts the name of the ServiceEntry made from a Service. A
// colon is never in a Kubernetes name, so it can't collide with a
// ServiceEntry object, and messages read "ServiceEntry ns/service:name".
const servicePrefix = "service:"

// serviceWorld is what Services are turned into ServiceEntries from.
type serviceWorld struct {
	domain string // the cluster's DNS domain, cluster.local
	known  map[string]bool
	limits map[hostPort]bool // the rate-limit services' ports
	slices map[serviceRef][]*discoveryv1.EndpointSlice
	pods   map[serviceRef]*corev1.Pod
}

// serviceRef is a namespaced name (of a Service or a Pod).
type serviceRef struct{ namespace, name string }

// hostPort is a Service host and port.
type hostPort struct {
	host string
	port int32
}

// limitServices returns the host ports the routers' global rate limits
// name as their rate-limit service.
func limitServices(routers []*v1alpha1.MetaRouter) map[hostPort]bool {
	out := map[hostPort]bool{}
	for _, mr := range routers {
		if g := mr.Spec.GlobalRateLimit; g != nil {
			if ref, ok := v1alpha1.ParseRateLimitService(g.RateLimitService); ok {
				out[hostPort{ref.Host, ref.Port}] = true
			}
		}
	}
	return out
}

// serviceEntry returns the ServiceEntry equivalent of svc, or nil when none
// of its ports speaks a meta-protocol or is a global rate limit's service
// (a port of protocol grpc, which gets clusters and no listener). Its hosts are the Service's DNS name
// (<name>.<namespace>.svc.<domain>) and those of HostsAnnotation; its
// exportTo is ExportToAnnotation's; its
// endpoints are the ready ones of its EndpointSlices, labelled with their
// Pod's labels so DestinationPolicy subsets select pods, and with its
// service account, the identity callers expect under mutual TLS.
func (w *serviceWorld) serviceEntry(svc *corev1.Service) *v1alpha1.ServiceEntry {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	// The Service's age is its ServiceEntry's, for conflicts with others.
	se := &v1alpha1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: servicePrefix + svc.Name,
		CreationTimestamp: svc.CreationTimestamp}}
	hosts := w.hosts(svc)
	portNames := map[string]v1alpha1.Name{} // Service port name → ServiceEntry's
	for _, p := range svc.Spec.Ports {
		proto := portProtocol(p, w.known)
		if proto == "" && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) &&
			slices.ContainsFunc(hosts, func(h v1alpha1.Host) bool { return w.limits[hostPort{string(h), p.Port}] }) {
			proto = "grpc"
		}
		if proto == "" {
			continue
		}
		name := p.Name
		if name == "" { // a Service's only port may be unnamed
			name = "port-" + strconv.Itoa(int(p.Port))
		}
		portNames[p.Name] = v1alpha1.Name(name)
		se.Spec.Ports = append(se.Spec.Ports, v1alpha1.ServicePort{Number: v1alpha1.PortNumber(p.Port), Name: v1alpha1.Name(name), Protocol: v1alpha1.Name(proto)})
	}
	if len(se.Spec.Ports) == 0 {
		return nil
	}
	se.Spec.Hosts = hosts
	se.Spec.ExportTo = serviceExportTo(svc)
	// Its ClusterIPs are what clients dial (mesh mode's capture
	// destinations); a headless Service has none.
	for _, ip := range svc.Spec.ClusterIPs {
		if ip != "" && ip != corev1.ClusterIPNone {
			se.Spec.Addresses = append(se.Spec.Addresses, ip)
		}
	}
	se.Spec.Endpoints = w.endpoints(serviceRef{svc.Namespace, svc.Name}, portNames)
	return se
}

func (w *serviceWorld) hosts(svc *corev1.Service) []v1alpha1.Host {
	hosts := []v1alpha1.Host{v1alpha1.Host(svc.Name + "." + svc.Namespace + ".svc." + w.domain)}
	for _, h := range strings.Split(svc.Annotations[HostsAnnotation], ",") {
		if h := v1alpha1.Host(strings.TrimSpace(h)); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// endpoints returns the ready endpoints of a Service's EndpointSlices, one
// per address (the first of each endpoint, as the EndpointSlice API says
// consumers use), in address order. An endpoint whose slice has none of the
// meta-protocol ports is left out.
func (w *serviceWorld) endpoints(svc serviceRef, portNames map[string]v1alpha1.Name) []v1alpha1.Endpoint {
	var out []v1alpha1.Endpoint
	seen := map[string]bool{}
	for _, slice := range w.slices[svc] {
		ports := map[string]v1alpha1.PortNumber{}
		for _, p := range slice.Ports {
			name, ok := portNames[ptrOr(p.Name, "")]
			if ok && p.Port != nil && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) {
				ports[string(name)] = v1alpha1.PortNumber(*p.Port)
			}
		}
		if len(ports) == 0 {
			continue
		}
		for _, ep := range slice.Endpoints {
			if len(ep.Addresses) == 0 || !ptrOr(ep.Conditions.Ready, true) || seen[ep.Addresses[0]] {
				continue
			}
			seen[ep.Addresses[0]] = true
			e := v1alpha1.Endpoint{Address: ep.Addresses[0], Ports: ports}
			if pod := w.pod(svc.namespace, ep.TargetRef); pod != nil {
				e.Labels, e.ServiceAccount = pod.Labels, pod.Spec.ServiceAccountName
			}
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b v1alpha1.Endpoint) int { return cmp.Compare(a.Address, b.Address) })
	return out
}

// pod returns the Pod an endpoint refers to (nil when it refers to none,
// or to one not seen yet).
func (w *serviceWorld) pod(namespace string, ref *corev1.ObjectReference) *corev1.Pod {
	if ref == nil || ref.Kind != "Pod" {
		return nil
	}
	return w.pods[serviceRef{cmp.Or(ref.Namespace, namespace), ref.Name}]
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
