package config_test

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/metamesh/metamesh/crds/xdsapi"
	"github.com/metamesh/metamesh/proxy/config"
)

// editProxy rewrites the MetaProtocolProxy config of the first listener.
func editProxy(t *testing.T, res *xdsapi.Resources, edit func(*xdsapi.MetaProtocolProxy)) {
	t.Helper()
	f := res.Listeners[0].GetFilterChains()[0].GetFilters()[0]
	var cfg xdsapi.MetaProtocolProxy
	if err := f.GetTypedConfig().UnmarshalTo(&cfg); err != nil {
		t.Fatal(err)
	}
	edit(&cfg)
	a, err := anypb.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
}

func mustStruct(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Shortcuts into the bootstrap: greetings virtual host routes, clusters.
func route(res *xdsapi.Resources, i int) *routev3.Route {
	return res.Routes[0].GetVirtualHosts()[0].GetRoutes()[i]
}

func clusterNamed(t *testing.T, res *xdsapi.Resources, name string) *clusterv3.Cluster {
	t.Helper()
	for _, c := range res.Clusters {
		if c.GetName() == name {
			return c
		}
	}
	t.Fatalf("no cluster %s in the bootstrap", name)
	return nil
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, res *xdsapi.Resources)
		want []string // the resource, then the field path
	}{
		// Routes.
		{
			name: "duplicate virtual host name",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				vhs := res.Routes[0].GetVirtualHosts()
				other := proto.Clone(vhs[0]).(*routev3.VirtualHost)
				other.Domains = []string{"other.Service"}
				res.Routes[0].VirtualHosts = append(vhs, other)
			},
			want: []string{"route_configuration dubbo_routes", ".name: \"greetings\" is also the name of virtual_hosts[0]"},
		},
		{
			name: "redirect action",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 1).Action = &routev3.Route_Redirect{Redirect: &routev3.RedirectAction{HostRedirect: "x"}}
			},
			want: []string{"route_configuration dubbo_routes", "virtual_hosts[0].routes[1].redirect", "not supported"},
		},
		{
			name: "match.path",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 3).GetMatch().PathSpecifier = &routev3.RouteMatch_Path{Path: "/sayHello"}
			},
			want: []string{"route_configuration dubbo_routes", "virtual_hosts[0].routes[3].match.path"},
		},
		{
			name: "match.prefix with a path",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 3).GetMatch().PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/api"}
			},
			want: []string{"route_configuration dubbo_routes", "routes[3].match.prefix", `"/api"`},
		},
		{
			name: "route.idle_timeout",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 3).GetRoute().IdleTimeout = durationpb.New(1e9)
			},
			want: []string{"route_configuration dubbo_routes", "routes[3].route.idle_timeout"},
		},
		{
			name: "retry_policy.retry_on",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 3).GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "reset,5xx"}
			},
			want: []string{"routes[3].route.retry_policy.retry_on", `"5xx"`},
		},
		{
			name: "retry_policy.host_selection_retry_max_attempts",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 3).GetRoute().RetryPolicy = &routev3.RetryPolicy{HostSelectionRetryMaxAttempts: 3}
			},
			want: []string{"routes[3].route.retry_policy.host_selection_retry_max_attempts"},
		},
		{
			name: "weighted_clusters.header_name",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 1).GetRoute().GetWeightedClusters().RandomValueSpecifier = &routev3.WeightedCluster_HeaderName{HeaderName: "x-pick"}
			},
			want: []string{"route_configuration dubbo_routes", "routes[1].route.weighted_clusters.header_name"},
		},
		{
			name: "weighted cluster with per-cluster headers",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				wc := route(res, 1).GetRoute().GetWeightedClusters().GetClusters()[1]
				wc.RequestHeadersToRemove = []string{"x"}
			},
			want: []string{"routes[1].route.weighted_clusters.clusters[1].request_headers_to_remove"},
		},
		{
			name: "zero total weight",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				for _, wc := range route(res, 1).GetRoute().GetWeightedClusters().GetClusters() {
					wc.Weight = wrapperspb.UInt32(0)
				}
			},
			want: []string{"route_configuration dubbo_routes", "virtual_hosts[0] (greetings)", "routes[1] (canary)", "total weight 0"},
		},
		{
			name: "regex that does not compile",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				// The bootstrap's version matcher is the deprecated
				// safe_regex_match, still sent by control planes.
				spec := &routev3.HeaderMatcher_SafeRegexMatch{}
				//lint:ignore SA1019 testing the deprecated field on purpose
				spec.SafeRegexMatch = &matcherv3.RegexMatcher{Regex: "1.(["}
				route(res, 1).GetMatch().GetHeaders()[1].HeaderMatchSpecifier = spec
			},
			want: []string{"route_configuration dubbo_routes", "routes[1].match.headers[1]", "missing closing ]"},
		},
		{
			name: "string_match regex that does not compile",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 0).GetMatch().GetHeaders()[0].GetStringMatch().MatchPattern = &matcherv3.StringMatcher_SafeRegex{
					SafeRegex: &matcherv3.RegexMatcher{Regex: "a)"}}
			},
			want: []string{"route_configuration dubbo_routes", "routes[0].match.headers[0]", "unexpected )"},
		},
		{
			name: "ignore_case",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 0).GetMatch().GetHeaders()[0].GetStringMatch().IgnoreCase = true
			},
			want: []string{"route_configuration dubbo_routes", "routes[0].match.headers[0]", "string_match.ignore_case"},
		},
		{
			name: "append_action add_if_absent",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				for _, r := range res.Routes[0].GetVirtualHosts()[0].GetRoutes() {
					for _, o := range r.GetRequestHeadersToAdd() {
						o.AppendAction = corev3.HeaderValueOption_ADD_IF_ABSENT
						return
					}
				}
				t.Fatal("the bootstrap has no request_headers_to_add")
			},
			want: []string{"route_configuration dubbo_routes", "request_headers_to_add[0].append_action", "ADD_IF_ABSENT"},
		},
		{
			name: "header matcher range_match",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 0).GetMatch().GetHeaders()[1].HeaderMatchSpecifier = &routev3.HeaderMatcher_RangeMatch{}
			},
			want: []string{"route_configuration dubbo_routes", "routes[0].match.headers[1].range_match"},
		},
		{
			name: "header matcher treat_missing_header_as_empty",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 0).GetMatch().GetHeaders()[1].TreatMissingHeaderAsEmpty = true
			},
			want: []string{"route_configuration dubbo_routes", "routes[0].match.headers[1].treat_missing_header_as_empty"},
		},
		{
			name: "hash_policy on a cookie",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 2).GetRoute().HashPolicy[0].PolicySpecifier = &routev3.RouteAction_HashPolicy_Cookie_{
					Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: "c"}}
			},
			want: []string{"route_configuration dubbo_routes", "routes[2].route.hash_policy[0]"},
		},
		{
			name: "request_headers_to_add with keep_empty_value",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				route(res, 1).GetRequestHeadersToAdd()[0].KeepEmptyValue = true
			},
			want: []string{"route_configuration dubbo_routes", "routes[1].request_headers_to_add[0].keep_empty_value"},
		},
		{
			name: "virtual host with retry_policy",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Routes[0].GetVirtualHosts()[1].RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx"}
			},
			want: []string{"route_configuration dubbo_routes", "virtual_hosts[1].retry_policy"},
		},
		{
			name: "a domain claimed twice",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				vh := res.Routes[0].GetVirtualHosts()[1]
				vh.Domains = append(vh.Domains, greetings)
			},
			want: []string{"route_configuration dubbo_routes", "virtual_hosts[1] (users)", "domains", greetings},
		},
		{
			name: "duplicate route configuration",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Routes = append(res.Routes, proto.Clone(res.Routes[0]).(*routev3.RouteConfiguration))
			},
			want: []string{"route_configuration dubbo_routes", "name: duplicate"},
		},

		// Clusters and endpoints.
		{
			name: "LOGICAL_DNS cluster",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				clusterNamed(t, res, "users").ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS}
			},
			want: []string{"cluster users.type", "LOGICAL_DNS", "not supported"},
		},
		{
			name: "MAGLEV",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				clusterNamed(t, res, "orders").LbPolicy = clusterv3.Cluster_MAGLEV
			},
			want: []string{"cluster orders.lb_policy", "MAGLEV"},
		},
		{
			name: "cluster outlier_detection.success_rate_minimum_hosts",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				clusterNamed(t, res, "users").OutlierDetection = &clusterv3.OutlierDetection{SuccessRateMinimumHosts: wrapperspb.UInt32(3)}
			},
			want: []string{"cluster users.outlier_detection.success_rate_minimum_hosts", "not supported"},
		},
		{
			name: "duplicate cluster names",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Clusters = append(res.Clusters, proto.Clone(clusterNamed(t, res, "users")).(*clusterv3.Cluster))
			},
			want: []string{"cluster users", "name: duplicate"},
		},
		{
			name: "priority 1 endpoints",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Endpoints[0].GetEndpoints()[0].Priority = 1
			},
			want: []string{"cluster greetings-v1", "endpoints[0].priority", "only priority 0"},
		},
		{
			name: "priority 1 inline endpoints",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				eps := clusterNamed(t, res, "users").GetLoadAssignment().GetEndpoints()
				eps[1].Priority = 2
			},
			want: []string{"cluster users", "endpoints[1].priority"},
		},
		{
			name: "pipe endpoint address",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				ep := clusterNamed(t, res, "users").GetLoadAssignment().GetEndpoints()[1].GetLbEndpoints()[0]
				ep.GetEndpoint().Address = &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/tmp/s"}}}
			},
			want: []string{"cluster users", "endpoints[1].lb_endpoints[0].endpoint.address", "socket address"},
		},
		{
			name: "Validate: cluster without a name",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				clusterNamed(t, res, "orders").Name = ""
			},
			want: []string{"cluster :", "invalid Cluster.Name"},
		},
		{
			name: "Validate: negative connect_timeout",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				clusterNamed(t, res, "users").ConnectTimeout = durationpb.New(-1)
			},
			want: []string{"cluster users:", "invalid Cluster.ConnectTimeout"},
		},
		{
			name: "Validate: virtual host without domains",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Routes[0].GetVirtualHosts()[1].Domains = nil
			},
			want: []string{"route_configuration dubbo_routes:", "invalid VirtualHost.Domains"},
		},
		{
			name: "Validate: assignment without cluster_name",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Endpoints[1].ClusterName = ""
			},
			want: []string{"cluster_load_assignment :", "ClusterName"},
		},

		// Listeners.
		{
			name: "unknown codec",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				editProxy(t, res, func(p *xdsapi.MetaProtocolProxy) { p.Codec = "smtp" })
			},
			want: []string{"listener dubbo_20880", "codec", `unknown codec "smtp"`},
		},
		{
			name: "invalid codec config",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				editProxy(t, res, func(p *xdsapi.MetaProtocolProxy) {
					p.CodecConfig = mustStruct(t, map[string]any{"maxFrameBytes": -1})
				})
			},
			want: []string{"listener dubbo_20880", "codec", "maxFrameBytes"},
		},
		{
			name: "wrong filter name",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Listeners[0].GetFilterChains()[0].GetFilters()[0].Name = "envoy.filters.network.tcp_proxy"
			},
			want: []string{"listener dubbo_20880.filter_chains[0].filters[0].name", "envoy.filters.network.tcp_proxy", xdsapi.FilterName},
		},
		{
			name: "typed_config of another type",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				a, err := anypb.New(&clusterv3.Cluster{Name: "x"})
				if err != nil {
					t.Fatal(err)
				}
				res.Listeners[0].GetFilterChains()[0].GetFilters()[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
			},
			want: []string{"listener dubbo_20880.filter_chains[0].filters[0].typed_config"},
		},
		{
			name: "two filters",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				fc := res.Listeners[0].GetFilterChains()[0]
				fc.Filters = append(fc.Filters, proto.Clone(fc.Filters[0]).(*listenerv3.Filter))
			},
			want: []string{"listener dubbo_20880.filter_chains", "exactly one"},
		},
		{
			name: "filter chain with a transport socket other than TLS",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Listeners[0].GetFilterChains()[0].TransportSocket = &corev3.TransportSocket{Name: "envoy.transport_sockets.alts"}
			},
			want: []string{"listener dubbo_20880.filter_chains[0].transport_socket.name", `"envoy.transport_sockets.alts"`},
		},
		{
			name: "filter chain match",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Listeners[0].GetFilterChains()[0].FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: []string{"a"}}
			},
			want: []string{"listener dubbo_20880.filter_chains[0].filter_chain_match"},
		},
		{
			name: "listener filters",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Listeners[0].ListenerFilters = []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector"}}
			},
			want: []string{"listener dubbo_20880.listener_filters", "not supported"},
		},
		{
			name: "two listeners on one address",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				l := proto.Clone(res.Listeners[0]).(*listenerv3.Listener)
				l.Name = "dubbo_again"
				res.Listeners = append(res.Listeners, l)
			},
			want: []string{"listener dubbo_again", "address: 0.0.0.0:20880", "already used by listener dubbo_20880"},
		},
		{
			name: "duplicate listener names",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				l := proto.Clone(res.Listeners[0]).(*listenerv3.Listener)
				l.GetAddress().GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: 20881}
				res.Listeners = append(res.Listeners, l)
			},
			want: []string{"listener dubbo_20880", "name: duplicate"},
		},
		{
			name: "pipe listener address",
			edit: func(t *testing.T, res *xdsapi.Resources) {
				res.Listeners[0].Address = &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/tmp/s"}}}
			},
			want: []string{"listener dubbo_20880.address", "socket address"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := load(t)
			tt.edit(t, res)
			s, err := config.NewBuilder().Build(res)
			if err == nil {
				t.Fatalf("Build succeeded (%d listeners, %d clusters), want an error", len(s.Listeners), len(s.Clusters))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestPresentMatchFalse(t *testing.T) {
	// present_match: false matches requests without the attribute, and
	// invert_match flips that again.
	tests := []struct {
		present, invert bool
		wantInvert      bool
	}{
		{true, false, false},
		{false, false, true},
		{true, true, true},
		{false, true, false},
	}
	for _, tt := range tests {
		res := load(t)
		h := route(res, 0).GetMatch().GetHeaders()[1]
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: tt.present}
		h.InvertMatch = tt.invert
		s, err := config.NewBuilder().Build(res)
		if err != nil {
			t.Fatal(err)
		}
		m := s.Routes["dubbo_routes"].Lookup(greetings).Routes[0].Matchers[1]
		if m.Invert != tt.wantInvert {
			t.Errorf("present_match %v invert_match %v: Invert = %v, want %v", tt.present, tt.invert, m.Invert, tt.wantInvert)
		}
	}
}
