package config

import (
	"fmt"
	"net"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/metamesh/metamesh/proxy/cluster"
	"github.com/metamesh/metamesh/proxy/lb"
)

// assignmentOf returns the endpoints of c: its own (STATIC) or the
// assignment named after it (EDS; nil when there is none yet).
func assignmentOf(c *clusterv3.Cluster, cla map[string]*endpointv3.ClusterLoadAssignment) (*endpointv3.ClusterLoadAssignment, error) {
	switch c.GetType() {
	case clusterv3.Cluster_STATIC:
		return c.GetLoadAssignment(), nil
	case clusterv3.Cluster_EDS:
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		return cla[name], nil
	}
	return nil, fmt.Errorf("cluster %s.type: %s not supported (STATIC or EDS)", c.GetName(), c.GetType())
}

func (b *Builder) buildCluster(c *clusterv3.Cluster, assignment *endpointv3.ClusterLoadAssignment) (*cluster.Cluster, error) {
	path := "cluster " + c.GetName()
	if err := onlyFields(c, path, "name", "alt_stat_name", "type", "connect_timeout", "lb_policy",
		"load_assignment", "eds_cluster_config", "circuit_breakers", "ring_hash_lb_config", "outlier_detection", "transport_socket",
		"transport_socket_matches", "metadata"); err != nil {
		return nil, err
	}
	policy := c.GetLbPolicy().String()
	out := &cluster.Cluster{Name: c.GetName(), Policy: policy, ConnectTimeout: time.Second}
	if d := c.GetConnectTimeout(); d != nil {
		out.ConnectTimeout = d.AsDuration()
	}
	var err error
	if err = limits(c.GetCircuitBreakers(), out, path+".circuit_breakers"); err != nil {
		return nil, err
	}
	if out.TLS, out.TLSKey, err = clientTLS(c.GetTransportSocket(), path+".transport_socket"); err != nil {
		return nil, err
	}
	if out.Redis, err = redisCluster(c.GetMetadata(), path+".metadata"); err != nil {
		return nil, err
	}
	out.Load = b.load(c.GetName())
	if od := c.GetOutlierDetection(); od != nil {
		if out.Outlier, err = outlier(od, path+".outlier_detection"); err != nil {
			return nil, err
		}
	}
	eps, err := b.endpoints(assignment, path)
	if err != nil {
		return nil, err
	}
	out.Endpoints = eps
	if out.Mesh, err = b.meshCluster(c, assignment, path); err != nil {
		return nil, err
	}
	if out.LB, err = lb.New(policy, eps); err != nil {
		return nil, fmt.Errorf("%s.%w", path, err)
	}
	return out, nil
}

// limits reads the DEFAULT-priority circuit breaker thresholds: the
// connections per host, the requests in flight (max_requests) and the
// retry budget. max_pending_requests has no meaning here: the proxy
// queues no request waiting for a connection.
func limits(cb *clusterv3.CircuitBreakers, out *cluster.Cluster, path string) error {
	for i, t := range cb.GetThresholds() {
		tpath := fmt.Sprintf("%s.thresholds[%d]", path, i)
		if err := onlyFields(t, tpath, "priority", "max_connections", "max_requests", "retry_budget"); err != nil {
			return err
		}
		if t.GetPriority() != corev3.RoutingPriority_DEFAULT {
			return fmt.Errorf("%s.priority: only DEFAULT is supported", tpath)
		}
		if v := t.GetMaxConnections(); v != nil {
			out.MaxConnections = int(v.GetValue())
		}
		if v := t.GetMaxRequests(); v != nil {
			out.Limits.MaxRequests = int64(v.GetValue())
		}
		if rb := t.GetRetryBudget(); rb != nil {
			if err := onlyFields(rb, tpath+".retry_budget", "budget_percent", "min_retry_concurrency"); err != nil {
				return err
			}
			out.Limits.RetryBudgetPercent = rb.GetBudgetPercent().GetValue()
			out.Limits.MinRetryConcurrency = int64(rb.GetMinRetryConcurrency().GetValue())
		}
	}
	return nil
}

// outlier reads Envoy's OutlierDetection: consecutive_5xx (every failure
// a codec reports: connect failures, resets, timeouts, server error
// replies), interval, base_ejection_time, max_ejection_time and
// max_ejection_percent; unset fields take Envoy's defaults.
func outlier(od *clusterv3.OutlierDetection, path string) (*cluster.Outlier, error) {
	if err := onlyFields(od, path, "consecutive_5xx", "interval", "base_ejection_time", "max_ejection_time", "max_ejection_percent"); err != nil {
		return nil, err
	}
	o := cluster.Outlier{
		ConsecutiveErrors:  int32(od.GetConsecutive_5Xx().GetValue()),
		Interval:           od.GetInterval().AsDuration(),
		BaseEjectionTime:   od.GetBaseEjectionTime().AsDuration(),
		MaxEjectionTime:    od.GetMaxEjectionTime().AsDuration(),
		MaxEjectionPercent: int(od.GetMaxEjectionPercent().GetValue()),
	}
	o = o.WithDefaults()
	return &o, nil
}

// load returns the cluster's live counters, reusing the previous
// snapshot's for the same name.
func (b *Builder) load(name string) *cluster.Load {
	if l, ok := b.nextLoads[name]; ok {
		return l
	}
	l, ok := b.loads[name]
	if !ok {
		l = &cluster.Load{}
	}
	b.nextLoads[name] = l
	return l
}

// endpoints lists the healthy endpoints of an assignment, reusing the Host
// of every address the previous snapshot had.
func (b *Builder) endpoints(a *endpointv3.ClusterLoadAssignment, path string) ([]cluster.Endpoint, error) {
	var out []cluster.Endpoint
	for i, le := range a.GetEndpoints() {
		if le.GetPriority() != 0 {
			return nil, fmt.Errorf("%s: endpoints[%d].priority: only priority 0 is supported", path, i)
		}
		for j, ep := range le.GetLbEndpoints() {
			sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				return nil, fmt.Errorf("%s: endpoints[%d].lb_endpoints[%d].endpoint.address: a socket address is required", path, i, j)
			}
			switch ep.GetHealthStatus() {
			case corev3.HealthStatus_UNHEALTHY, corev3.HealthStatus_DRAINING, corev3.HealthStatus_TIMEOUT:
				continue
			}
			addr := hostPort(sa)
			w := ep.GetLoadBalancingWeight().GetValue()
			if w == 0 {
				w = 1 // unset, as in Envoy
			}
			out = append(out, cluster.Endpoint{Host: b.host(addr), Weight: w})
		}
	}
	return out, nil
}

// hostPort is a socket address as host:port.
func hostPort(sa *corev3.SocketAddress) string {
	return net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
}

func (b *Builder) host(addr string) *cluster.Host {
	// An address in several clusters is one Host: look in this build first.
	if h, ok := b.nextHosts[addr]; ok {
		return h
	}
	h, ok := b.hosts[addr]
	if !ok {
		h = cluster.NewHost(addr)
	}
	b.nextHosts[addr] = h
	return h
}
