package crds_test

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/metamesh/metamesh/crds/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

// globalLimit is a valid global rate limit, for cases to break.
func globalLimit() *v1.GlobalRateLimit {
	return &v1.GlobalRateLimit{Domain: "production", RateLimitService: "outbound|8081||rls.example", RequestTimeout: ptr[v1.Duration]("50ms"),
		Descriptors: []v1.RateLimitDescriptor{{Property: "method", DescriptorKey: "method"}}}
}

// Each case breaks one rule in a valid sample. path is where Validate must
// report it; serverPath is where the API server's OpenAPI or CEL validation
// must (default: path), or "-" for rules only file mode can check.
var invalidCases = []struct {
	name       string
	sample     string
	mutate     func(obj any)
	path       string
	serverPath string
}{
	// ServiceEntry
	{"no hosts", "serviceentry.yaml", func(o any) { o.(*v1.ServiceEntry).Spec.Hosts = nil }, "spec.hosts", ""},
	{"duplicate host", "serviceentry.yaml", func(o any) {
		s := &o.(*v1.ServiceEntry).Spec
		s.Hosts = append(s.Hosts, s.Hosts[0])
	}, "spec.hosts[1]", ""},
	{"no ports", "serviceentry.yaml", func(o any) { o.(*v1.ServiceEntry).Spec.Ports = nil }, "spec.ports", ""},
	{"port out of range", "serviceentry.yaml", func(o any) { o.(*v1.ServiceEntry).Spec.Ports[0].Number = 70000 }, "spec.ports[0].number", ""},
	{"port name not a label", "serviceentry.yaml", func(o any) { o.(*v1.ServiceEntry).Spec.Ports[0].Name = "Dubbo_1" }, "spec.ports[0].name", ""},
	{"duplicate port name", "serviceentry.yaml", func(o any) {
		s := &o.(*v1.ServiceEntry).Spec
		s.Ports = append(s.Ports, v1.ServicePort{Number: 20890, Name: "dubbo", Protocol: "dubbo"})
	}, "spec.ports[1].name", "spec.ports"},
	{"duplicate port number", "serviceentry.yaml", func(o any) {
		s := &o.(*v1.ServiceEntry).Spec
		s.Ports = append(s.Ports, v1.ServicePort{Number: 20880, Name: "other", Protocol: "dubbo"})
	}, "spec.ports[1].number", "spec.ports"},
	{"endpoint port names no service port", "serviceentry.yaml", func(o any) {
		o.(*v1.ServiceEntry).Spec.Endpoints[0].Ports["grpc"] = 9000
	}, "spec.endpoints[0].ports[grpc]", "spec"},
	{"endpoint port out of range", "serviceentry.yaml", func(o any) {
		o.(*v1.ServiceEntry).Spec.Endpoints[0].Ports["dubbo"] = 0
	}, "spec.endpoints[0].ports[dubbo]", "spec.endpoints[0].ports.dubbo"},
	{"endpoint weight 0", "serviceentry.yaml", func(o any) { o.(*v1.ServiceEntry).Spec.Endpoints[0].Weight = ptr[int32](0) }, "spec.endpoints[0].weight", ""},
	{"endpoint address neither IP nor name", "serviceentry.yaml", func(o any) { o.(*v1.ServiceEntry).Spec.Endpoints[0].Address = "127.0.0.1:20881" }, "spec.endpoints[0].address", "-"},
	{"no name", "serviceentry.yaml", func(o any) { o.(*v1.ServiceEntry).Name = "" }, "metadata.name", "-"},
	{"subjectAltName not a SPIFFE ID", "serviceentry.yaml", func(o any) {
		o.(*v1.ServiceEntry).Spec.SubjectAltNames = []string{"greeter.default.svc"}
	}, "spec.subjectAltNames[0]", "spec.subjectAltNames"},

	// DestinationPolicy
	{"duplicate subset", "destinationpolicy.yaml", func(o any) {
		s := &o.(*v1.DestinationPolicy).Spec
		s.Subsets = append(s.Subsets, v1.Subset{Name: "v1"})
	}, "spec.subsets[2].name", "spec.subsets"},
	{"unknown policy", "destinationpolicy.yaml", func(o any) { o.(*v1.DestinationPolicy).Spec.LoadBalancer.Policy = "WEIGHTED" }, "spec.loadBalancer.policy", ""},
	{"consistent hash without hashKey", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.LoadBalancer.Policy = v1.ConsistentHash
	}, "spec.loadBalancer.hashKey", ""},
	{"hashKey without consistent hash", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.LoadBalancer.HashKey = "user-id"
	}, "spec.loadBalancer.hashKey", ""},
	{"connectTimeout not a duration", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.ConnectionPool.ConnectTimeout = ptr(v1.Duration("1 second"))
	}, "spec.connectionPool.connectTimeout", ""},
	{"idleTimeout zero", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.ConnectionPool.IdleTimeout = ptr(v1.Duration("0s"))
	}, "spec.connectionPool.idleTimeout", ""},
	{"maxConnections 0", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.ConnectionPool.MaxConnections = ptr[int32](0)
	}, "spec.connectionPool.maxConnections", ""},
	{"maxEjectionPercent 101", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.OutlierDetection.MaxEjectionPercent = ptr[int32](101)
	}, "spec.outlierDetection.maxEjectionPercent", ""},
	{"redis read policy unknown", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.RedisCluster = &v1.RedisCluster{ReadPolicy: "SLAVE"}
	}, "spec.redisCluster.readPolicy", ""},
	{"redis refresh under 100ms", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.RedisCluster = &v1.RedisCluster{RefreshInterval: ptr(v1.Duration("50ms"))}
	}, "spec.redisCluster.refreshInterval", ""},
	{"client TLS mode unknown", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.TLS = &v1.ClientTLS{Mode: "ISTIO_MUTUAL"}
	}, "spec.tls.mode", ""},
	{"mutual TLS without a key", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.TLS = &v1.ClientTLS{Mode: v1.ClientTLSMutual, ClientCertificate: "/etc/certs/cert.pem"}
	}, "spec.tls.privateKey", "-"},
	{"client certificate with SIMPLE", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.TLS = &v1.ClientTLS{Mode: v1.ClientTLSSimple, ClientCertificate: "/etc/certs/cert.pem"}
	}, "spec.tls.clientCertificate", "-"},
	{"listener TLS without a certificate", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.ListenerTLS = &v1.ListenerTLS{Mode: v1.ServerTLSSimple, PrivateKey: "/etc/certs/key.pem"}
	}, "spec.listenerTls.serverCertificate", "-"},
	{"listener TLS mode unknown", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.ListenerTLS = &v1.ListenerTLS{Mode: "PASSTHROUGH", ServerCertificate: "c", PrivateKey: "k"}
	}, "spec.listenerTls.mode", ""},
	{"mesh mutual TLS beside listener TLS", "destinationpolicy.yaml", func(o any) {
		s := &o.(*v1.DestinationPolicy).Spec
		s.ListenerTLS = &v1.ListenerTLS{Mode: v1.ServerTLSSimple, ServerCertificate: "c", PrivateKey: "k"}
		s.MTLS = &v1.MTLS{Mode: v1.MTLSStrict}
	}, "spec.mtls", ""},
	{"mesh mutual TLS mode unknown", "destinationpolicy.yaml", func(o any) {
		o.(*v1.DestinationPolicy).Spec.MTLS = &v1.MTLS{Mode: "ISTIO_MUTUAL"}
	}, "spec.mtls.mode", ""},

	// MetaRouter
	{"weights add to 90", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[1].Route[0].Weight = ptr[int32](70) }, "spec.routes[1].route", ""},
	{"weight on one destination only", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[1].Route[0].Weight = nil }, "spec.routes[1].route", ""},
	{"weight over 100", "metarouter.yaml", func(o any) {
		r := o.(*v1.MetaRouter).Spec.Routes[1].Route
		r[0].Weight, r[1].Weight = ptr[int32](120), ptr[int32](-20)
	}, "spec.routes[1].route[0].weight", ""},
	{"no destinations", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[0].Route = nil }, "spec.routes[0].route", ""},
	{"route without name", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[2].Name = "" }, "spec.routes[2].name", ""},
	{"duplicate route name", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[2].Name = "canary" }, "spec.routes[2].name", "spec.routes"},
	{"exact and prefix", "metarouter.yaml", func(o any) {
		o.(*v1.MetaRouter).Spec.Routes[0].Match.Attributes["batchjob"] = v1.StringMatch{Exact: ptr("true"), Prefix: ptr("t")}
	}, "spec.routes[0].match.attributes[batchjob]", ""},
	{"regex not RE2", "metarouter.yaml", func(o any) {
		o.(*v1.MetaRouter).Spec.Routes[0].Match.Attributes["batchjob"] = v1.StringMatch{Regex: ptr("(?<=x)y")}
	}, "spec.routes[0].match.attributes[batchjob].regex", "-"},
	{"empty attribute name", "metarouter.yaml", func(o any) {
		o.(*v1.MetaRouter).Spec.Routes[0].Match.Attributes[""] = v1.StringMatch{}
	}, "spec.routes[0].match.attributes", ""},
	{"timeout not a duration", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[1].Timeout = ptr(v1.Duration("2")) }, "spec.routes[1].timeout", ""},
	{"perTryTimeout negative", "metarouter.yaml", func(o any) {
		o.(*v1.MetaRouter).Spec.Routes[1].Retries.PerTryTimeout = ptr(v1.Duration("-5ms"))
	}, "spec.routes[1].retries.perTryTimeout", ""},
	{"unknown retryOn", "metarouter.yaml", func(o any) {
		o.(*v1.MetaRouter).Spec.Routes[1].Retries.RetryOn = []v1.RetryOn{"5xx"}
	}, "spec.routes[1].retries.retryOn[0]", ""},
	{"mirrorPercentage 101", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[1].MirrorPercentage = ptr[int32](101) }, "spec.routes[1].mirrorPercentage", ""},
	{"mirrorPercentage without mirror", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[1].Mirror = nil }, "spec.routes[1].mirror", ""},
	{"subset not a label", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[0].Route[0].Destination.Subset = "V2!" }, "spec.routes[0].route[0].destination.subset", ""},
	{"mutation without key", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Routes[1].RequestMutation[0].Key = "" }, "spec.routes[1].requestMutation[0].key", ""},
	{"rate limit with neither bucket nor conditions", "metarouter.yaml", func(o any) {
		o.(*v1.MetaRouter).Spec.LocalRateLimit = &v1.LocalRateLimit{}
	}, "spec.localRateLimit", ""},
	{"maxTokens 0", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.LocalRateLimit.TokenBucket.MaxTokens = 0 }, "spec.localRateLimit.tokenBucket.maxTokens", ""},
	{"tokensPerFill 0", "metarouter.yaml", func(o any) {
		o.(*v1.MetaRouter).Spec.LocalRateLimit.Conditions[0].TokenBucket.TokensPerFill = ptr[int32](0)
	}, "spec.localRateLimit.conditions[0].tokenBucket.tokensPerFill", ""},
	{"fillInterval zero", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.LocalRateLimit.TokenBucket.FillInterval = "0ms" }, "spec.localRateLimit.tokenBucket.fillInterval", ""},
	{"global limit service neither form", "metarouter.yaml", func(o any) {
		g := globalLimit()
		g.RateLimitService = "rate-limit-server"
		o.(*v1.MetaRouter).Spec.GlobalRateLimit = g
	}, "spec.globalRateLimit.rateLimitService", ""},
	{"global limit without descriptors", "metarouter.yaml", func(o any) {
		g := globalLimit()
		g.Descriptors = nil
		o.(*v1.MetaRouter).Spec.GlobalRateLimit = g
	}, "spec.globalRateLimit.descriptors", ""},
	{"global limit descriptor without key", "metarouter.yaml", func(o any) {
		g := globalLimit()
		g.Descriptors[0].DescriptorKey = ""
		o.(*v1.MetaRouter).Spec.GlobalRateLimit = g
	}, "spec.globalRateLimit.descriptors[0].descriptorKey", ""},
	{"global limit timeout zero", "metarouter.yaml", func(o any) {
		g := globalLimit()
		g.RequestTimeout = ptr[v1.Duration]("0ms")
		o.(*v1.MetaRouter).Spec.GlobalRateLimit = g
	}, "spec.globalRateLimit.requestTimeout", ""},

	// ApplicationProtocol
	{"codec not a label", "applicationprotocol.yaml", func(o any) { o.(*v1.ApplicationProtocol).Spec.Codec = "My_RPC" }, "spec.codec", ""},
	{"no codec", "applicationprotocol.yaml", func(o any) { o.(*v1.ApplicationProtocol).Spec.Codec = "" }, "spec.codec", ""},

	// exportTo (the same type on three kinds)
	{"exportTo not a namespace", "serviceentry.yaml", func(o any) { o.(*v1.ServiceEntry).Spec.ExportTo = v1.ExportTo{"Shop"} }, "spec.exportTo[0]", ""},
	{"exportTo all and a namespace", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.ExportTo = v1.ExportTo{"*", "shop"} }, "spec.exportTo", ""},
	{"exportTo twice", "destinationpolicy.yaml", func(o any) { o.(*v1.DestinationPolicy).Spec.ExportTo = v1.ExportTo{".", "."} }, "spec.exportTo[1]", ""},

	// gateways
	{"gateway namespace not a label", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Gateways = v1.Gateways{"Istio-System/gw"} }, "spec.gateways[0]", ""},
	{"gateway name with a slash too many", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Gateways = v1.Gateways{"a/b/c"} }, "spec.gateways[0]", ""},
	{"gateway twice", "metarouter.yaml", func(o any) { o.(*v1.MetaRouter).Spec.Gateways = v1.Gateways{"mesh", "mesh"} }, "spec.gateways[1]", ""},

	// Sidecar
	{"no egress", "sidecar.yaml", func(o any) { o.(*v1.Sidecar).Spec.Egress = nil }, "spec.egress", ""},
	{"egress without hosts", "sidecar.yaml", func(o any) { o.(*v1.Sidecar).Spec.Egress[0].Hosts = nil }, "spec.egress[0].hosts", ""},
	{"egress host without namespace", "sidecar.yaml", func(o any) { o.(*v1.Sidecar).Spec.Egress[0].Hosts[0] = "shop" }, "spec.egress[0].hosts[0]", ""},
	{"egress namespace not a label", "sidecar.yaml", func(o any) { o.(*v1.Sidecar).Spec.Egress[0].Hosts[0] = "Shop/*" }, "spec.egress[0].hosts[0]", ""},
	{"egress host wildcard inside", "sidecar.yaml", func(o any) { o.(*v1.Sidecar).Spec.Egress[0].Hosts[0] = "./a.*.b" }, "spec.egress[0].hosts[0]", ""},
	{"egress host twice", "sidecar.yaml", func(o any) {
		h := &o.(*v1.Sidecar).Spec.Egress[0].Hosts
		*h = append(*h, (*h)[0])
	}, "spec.egress[0].hosts[2]", ""},

	// AuthorizationPolicy
	{"unknown action", "authorizationpolicy.yaml", func(o any) { o.(*v1.AuthorizationPolicy).Spec.Action = "LOG" }, "spec.action", ""},
	{"protocol not a label", "authorizationpolicy.yaml", func(o any) { o.(*v1.AuthorizationPolicy).Spec.Protocols = []v1.Name{"Dubbo"} }, "spec.protocols[0]", ""},
	{"duplicate host", "authorizationpolicy.yaml", func(o any) {
		s := &o.(*v1.AuthorizationPolicy).Spec
		s.Hosts = append(s.Hosts, s.Hosts[0])
	}, "spec.hosts[1]", ""},
	{"ipBlock not an address", "authorizationpolicy.yaml", func(o any) {
		o.(*v1.AuthorizationPolicy).Spec.Rules[0].From[1].IPBlocks = []string{"10.0.0.0/33"}
	}, "spec.rules[0].from[1].ipBlocks[0]", "-"},
	{"ipBlock with host bits", "authorizationpolicy.yaml", func(o any) {
		o.(*v1.AuthorizationPolicy).Spec.Rules[0].From[1].NotIPBlocks = []string{"10.1.2.3/8"}
	}, "spec.rules[0].from[1].notIpBlocks[0]", "-"},
	{"wildcard inside a method", "authorizationpolicy.yaml", func(o any) {
		o.(*v1.AuthorizationPolicy).Spec.Rules[0].To[0].Methods = []string{"say*World"}
	}, "spec.rules[0].to[0].methods[0]", "-"},
	{"empty principal", "authorizationpolicy.yaml", func(o any) {
		o.(*v1.AuthorizationPolicy).Spec.Rules[0].From[0].Principals = []string{""}
	}, "spec.rules[0].from[0].principals[0]", "-"},
	{"notAttributes regex does not compile", "authorizationpolicy.yaml", func(o any) {
		o.(*v1.AuthorizationPolicy).Spec.Rules[0].To[0].NotAttributes["debug"] = v1.StringMatch{Regex: ptr("(")}
	}, "spec.rules[0].to[0].notAttributes[debug].regex", "-"},
	{"attribute with exact and prefix", "authorizationpolicy.yaml", func(o any) {
		o.(*v1.AuthorizationPolicy).Spec.Rules[0].To[0].Attributes = map[string]v1.StringMatch{"group": {Exact: ptr("a"), Prefix: ptr("b")}}
	}, "spec.rules[0].to[0].attributes[group]", ""},
}

func fieldPaths(errs field.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Field
	}
	return out
}

// TestInvalid checks that file mode (Validate) and Kubernetes (the CRD's
// OpenAPI schema and CEL rules, run by the API server's own code) reject the
// same mistakes at the same field.
func TestInvalid(t *testing.T) {
	servers := map[string]*server{}
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			obj, kind := decodeSample(t, tc.sample)
			tc.mutate(obj)

			errs := obj.Validate()
			if !slices.Contains(fieldPaths(errs), tc.path) {
				t.Errorf("Validate: want an error at %s, got %v", tc.path, errs)
			}
			for _, e := range errs {
				if e.Field == "" || e.Error() == "" {
					t.Errorf("error without field or reason: %#v", e)
				}
			}

			s := servers[kind]
			if s == nil {
				s = loadServer(t, crdFiles[kind])
				servers[kind] = s
			}
			serr := s.validate(t, toMap(t, obj))
			want := tc.serverPath
			switch want {
			case "-":
				if len(serr) > 0 {
					t.Errorf("the API server now catches this too (%v): give the case a serverPath", serr)
				}
				return
			case "":
				want = tc.path
			}
			if !slices.Contains(fieldPaths(serr), want) {
				t.Errorf("API server: want an error at %s, got %v", want, serr)
			}
		})
	}
}
