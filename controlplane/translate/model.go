package translate

import (
	"encoding/json"
	"fmt"
	"sort"

	"google.golang.org/protobuf/types/known/structpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/crds/v1alpha1"
)

// builtinCodecs are the protocols that need no ApplicationProtocol.
var builtinCodecs = []string{"dubbo", "thrift", "redis"}

// onePerPort lists protocols whose frames don't name their service, so a
// port can carry only one service of them.
var onePerPort = map[string]bool{"thrift": true, "redis": true}

// plainProtocols are ServiceEntry port protocols metamesh doesn't proxy:
// such a port gets clusters but no listener, for a global rate limit's
// service to name (docs/rate-limiting.md).
var plainProtocols = map[string]bool{"grpc": true, "http2": true, "tcp": true}

type codecRef struct {
	codec  string
	config *structpb.Struct
}

// service is one host of a ServiceEntry with what refers to it.
type service struct {
	host    string
	key     string // its ServiceEntry's status key
	entry   *v1alpha1.ServiceEntry
	ports   []v1alpha1.ServicePort
	plain   []v1alpha1.ServicePort // of plainProtocols: clusters only
	exports exportSet
	idx     int // in hostOrder

	// policies and routers are attached oldest first; no two of a list
	// are exported to one namespace (scope.go).
	policies []attached[*v1alpha1.DestinationPolicy]
	routers  []attached[*v1alpha1.MetaRouter]

	// The policy and router in force in the view being built (use).
	policy  *v1alpha1.DestinationPolicy
	polKey  string
	router  *v1alpha1.MetaRouter
	routKey string
}

// port is one listener: the services sharing a port and protocol, in host
// order once registered.
type port struct {
	number   int32
	protocol string
	services []*service
	// tls is how its listener terminates TLS (nil: plaintext), from the
	// DestinationPolicy tlsKey of one of its services (settleListenerTLS).
	tls    *v1alpha1.ListenerTLS
	tlsKey string
	// mtls is its mutual TLS mode between proxies (settleMTLS): DISABLE
	// when tls is set.
	mtls v1alpha1.MTLSMode
}

type translation struct {
	in     *Input
	opts   Options
	out    *Output
	status map[string]*status

	codecs    map[string]codecRef
	services  map[string]*service
	hostOrder []*service // services by host
	ports     map[int32]*port
	sidecars  map[string]*sidecar // by namespace
	conflicts []Conflict
	limits    map[*v1alpha1.MetaRouter]*limitService // ratelimit.go
	limited   []*service                             // hosts with a router that has a limit
	authz     []*authzPolicy                         // oldest first
	cache     buildCache                             // views.go
}

func keyOf(kind string, m *metav1.ObjectMeta) string { return Key(kind, m.Namespace, m.Name) }

// registerProtocols resolves protocol names to codecs: the built-ins, then each
// ApplicationProtocol by its name.
func (t *translation) registerProtocols() {
	t.codecs = map[string]codecRef{}
	for _, n := range builtinCodecs {
		if t.opts.KnownCodec == nil || t.opts.KnownCodec(n) {
			t.codecs[n] = codecRef{codec: n}
		}
	}
	for _, ap := range t.in.ApplicationProtocols {
		key := keyOf("ApplicationProtocol", &ap.ObjectMeta)
		t.st(key)
		if held, dup := t.codecs[ap.Name]; dup {
			if held.codec == string(ap.Spec.Codec) && held.config == nil &&
				(ap.Spec.CodecConfig == nil || len(ap.Spec.CodecConfig.Raw) == 0) {
				// It says what the built-in already is (Aeraki's own
				// ApplicationProtocol for dubbo): accepted, nothing to add.
				continue
			}
			// Two objects can't share a name: only a built-in holds it.
			t.conflict(key, "metadata.name", "", fmt.Sprintf("%q is a built-in protocol", ap.Name))
			continue
		}
		codec := string(ap.Spec.Codec)
		if t.opts.KnownCodec != nil && !t.opts.KnownCodec(codec) {
			t.reject(key, v1alpha1.ReasonUnknownCodec, fmt.Sprintf("spec.codec: no codec %q is built into this binary", codec))
			continue
		}
		ref := codecRef{codec: codec}
		if ap.Spec.CodecConfig != nil && len(ap.Spec.CodecConfig.Raw) > 0 {
			var m map[string]any
			if err := json.Unmarshal(ap.Spec.CodecConfig.Raw, &m); err != nil {
				t.reject(key, v1alpha1.ReasonInvalid, "spec.codecConfig: "+err.Error())
				continue
			}
			s, err := structpb.NewStruct(m)
			if err != nil {
				t.reject(key, v1alpha1.ReasonInvalid, "spec.codecConfig: "+err.Error())
				continue
			}
			ref.config = s
		}
		t.codecs[ap.Name] = ref
	}
}

// registerServices registers every host and port of the ServiceEntries. A host
// defined twice, a port claimed by two protocols, or a second service on a
// port whose protocol can't tell services apart (unless Options.CaptureOnly
// tells them apart by address: sharedPort) is refused on the newer object:
// the input is oldest first.
func (t *translation) registerServices() {
	t.services = map[string]*service{}
	t.ports = map[int32]*port{}
	for _, se := range t.in.ServiceEntries {
		key := keyOf("ServiceEntry", &se.ObjectMeta)
		t.st(key)
		for hi, h := range se.Spec.Hosts {
			host := string(h)
			if other, dup := t.services[host]; dup {
				t.conflict(key, fmt.Sprintf("spec.hosts[%d]", hi), other.key, fmt.Sprintf("%s is already defined by ServiceEntry %s/%s", host, other.entry.Namespace, other.entry.Name))
				continue
			}
			svc := &service{host: host, key: key, entry: se, exports: exportsOf(se.Spec.ExportTo, se.Namespace)}
			for pi, p := range se.Spec.Ports {
				if _, codec := t.codecs[string(p.Protocol)]; !codec && plainProtocols[string(p.Protocol)] {
					svc.plain = append(svc.plain, p)
					continue
				}
				if t.claimPort(svc, p, fmt.Sprintf("spec.ports[%d]", pi)) {
					svc.ports = append(svc.ports, p)
				}
			}
			t.services[host] = svc
		}
	}
	t.hostOrder = make([]*service, 0, len(t.services))
	for _, svc := range t.services {
		t.hostOrder = append(t.hostOrder, svc)
	}
	sort.Slice(t.hostOrder, func(i, j int) bool { return t.hostOrder[i].host < t.hostOrder[j].host })
	for i, svc := range t.hostOrder {
		svc.idx = i
	}
	for _, p := range t.ports {
		sort.Slice(p.services, func(i, j int) bool { return p.services[i].host < p.services[j].host })
	}
}

func (t *translation) claimPort(svc *service, p v1alpha1.ServicePort, path string) bool {
	proto := string(p.Protocol)
	if _, ok := t.codecs[proto]; !ok {
		t.reject(svc.key, v1alpha1.ReasonUnknownCodec, fmt.Sprintf("%s.protocol: %q is neither a built-in codec nor an ApplicationProtocol (built into this binary: %v), nor grpc, http2 or tcp (ports not proxied)", path, proto, t.builtins()))
		return false
	}
	pg, ok := t.ports[int32(p.Number)]
	if !ok {
		t.ports[int32(p.Number)] = &port{number: int32(p.Number), protocol: proto, services: []*service{svc}}
		return true
	}
	holder := pg.services[0]
	switch {
	case pg.protocol != proto:
		t.conflict(svc.key, path, holder.key, fmt.Sprintf("port %d already carries protocol %s (%s of ServiceEntry %s/%s)",
			p.Number, pg.protocol, holder.host, holder.entry.Namespace, holder.entry.Name))
		return false
	case onePerPort[proto] && t.opts.CaptureOnly:
		if reason := sharedPort(pg, svc, p); reason != "" {
			t.conflict(svc.key, path, holder.key, reason)
			return false
		}
	case onePerPort[proto]:
		t.conflict(svc.key, path, holder.key, fmt.Sprintf("port %d already carries %s service %s (ServiceEntry %s/%s); %s frames don't name their service, so a port carries one",
			p.Number, proto, holder.host, holder.entry.Namespace, holder.entry.Name, proto))
		return false
	}
	pg.services = append(pg.services, svc)
	return true
}

// sortedPorts returns the listeners in port order.
func (t *translation) sortedPorts() []*port {
	out := make([]*port, 0, len(t.ports))
	for _, p := range t.ports {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	return out
}

func (t *translation) builtins() []string {
	var out []string
	for _, n := range builtinCodecs {
		if _, ok := t.codecs[n]; ok {
			out = append(out, n)
		}
	}
	return out
}
