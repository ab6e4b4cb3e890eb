package v1alpha1

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Validate checks a ServiceEntry as the API server would.
func (x *ServiceEntry) Validate() field.ErrorList {
	errs := validateMeta(&x.ObjectMeta, true)
	s := &x.Spec
	p := field.NewPath("spec")
	errs = append(errs, validateHosts(s.Hosts, p.Child("hosts"))...)
	errs = append(errs, validateServiceAddresses(s.Addresses, p.Child("addresses"))...)
	errs = append(errs, validateSubjectAltNames(s.SubjectAltNames, p.Child("subjectAltNames"))...)

	pp := p.Child("ports")
	switch {
	case len(s.Ports) == 0:
		errs = append(errs, field.Required(pp, "at least one port"))
	case len(s.Ports) > maxPorts:
		errs = append(errs, field.TooMany(pp, len(s.Ports), maxPorts))
	}
	names := make(map[Name]bool, len(s.Ports))
	numbers := make(map[PortNumber]bool, len(s.Ports))
	for i, port := range s.Ports {
		ip := pp.Index(i)
		errs = append(errs, validatePort(port.Number, ip.Child("number"))...)
		errs = append(errs, validateName(port.Name, ip.Child("name"))...)
		errs = append(errs, validateName(port.Protocol, ip.Child("protocol"))...)
		if names[port.Name] {
			errs = append(errs, field.Duplicate(ip.Child("name"), port.Name))
		}
		if numbers[port.Number] {
			errs = append(errs, field.Duplicate(ip.Child("number"), port.Number))
		}
		names[port.Name], numbers[port.Number] = true, true
	}

	ep := p.Child("endpoints")
	if len(s.Endpoints) > maxEndpoints {
		errs = append(errs, field.TooMany(ep, len(s.Endpoints), maxEndpoints))
	}
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		ip := ep.Index(i)
		errs = append(errs, validateAddress(e.Address, ip.Child("address"))...)
		if len(e.Ports) > maxEndpointPorts {
			errs = append(errs, field.TooMany(ip.Child("ports"), len(e.Ports), maxEndpointPorts))
		}
		keys := make([]string, 0, len(e.Ports))
		for k := range e.Ports {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			kp := ip.Child("ports").Key(k)
			if !names[Name(k)] {
				errs = append(errs, field.NotFound(kp, k))
			}
			errs = append(errs, validatePort(e.Ports[k], kp)...)
		}
		errs = append(errs, validateRange(e.Weight, 1, maxWeight, ip.Child("weight"))...)
		if e.ServiceAccount != "" {
			for _, msg := range validation.IsDNS1123Subdomain(e.ServiceAccount) {
				errs = append(errs, field.Invalid(ip.Child("serviceAccount"), e.ServiceAccount, msg))
			}
		}
	}
	errs = append(errs, ValidateExportTo(s.ExportTo, p.Child("exportTo"))...)
	return errs
}

func validateServiceAddresses(as []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(as) > maxServiceAddresses {
		errs = append(errs, field.TooMany(p, len(as), maxServiceAddresses))
	}
	seen := make(map[string]bool, len(as))
	for i, a := range as {
		if seen[a] {
			errs = append(errs, field.Duplicate(p.Index(i), a))
		}
		seen[a] = true
		if _, err := netip.ParseAddr(a); err == nil {
			continue
		}
		if _, err := netip.ParsePrefix(a); err != nil {
			errs = append(errs, field.Invalid(p.Index(i), a, "must be an IP address or a CIDR range"))
		}
	}
	return errs
}

// maxServiceAddresses is spec.addresses' MaxItems.
const maxServiceAddresses = 64

func validateAddress(a string, p *field.Path) field.ErrorList {
	switch {
	case a == "":
		return field.ErrorList{field.Required(p, "")}
	case len(a) > maxHostLen:
		return field.ErrorList{field.TooLong(p, "", maxHostLen)}
	case net.ParseIP(a) != nil:
		return nil
	}
	// Not in the CRD schema: the API server cannot tell a typo from a name,
	// but a proxy can't dial an address that is neither IP nor DNS name.
	if msgs := validation.IsDNS1123Subdomain(a); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(p, a, "must be an IP address or a DNS name")}
	}
	return nil
}

// Validate checks a DestinationPolicy as the API server would.
func (x *DestinationPolicy) Validate() field.ErrorList {
	errs := validateMeta(&x.ObjectMeta, true)
	s := &x.Spec
	p := field.NewPath("spec")
	errs = append(errs, validateHost(s.Host, p.Child("host"))...)

	sp := p.Child("subsets")
	if len(s.Subsets) > maxSubsets {
		errs = append(errs, field.TooMany(sp, len(s.Subsets), maxSubsets))
	}
	seen := make(map[Name]bool, len(s.Subsets))
	for i, sub := range s.Subsets {
		np := sp.Index(i).Child("name")
		errs = append(errs, validateName(sub.Name, np)...)
		if seen[sub.Name] {
			errs = append(errs, field.Duplicate(np, sub.Name))
		}
		seen[sub.Name] = true
	}

	if lb := s.LoadBalancer; lb != nil {
		lp := p.Child("loadBalancer")
		switch lb.Policy {
		case "":
			errs = append(errs, field.Required(lp.Child("policy"), ""))
		case RoundRobin, LeastRequest, Random, ConsistentHash:
		default:
			errs = append(errs, field.NotSupported(lp.Child("policy"), lb.Policy,
				[]LoadBalancerPolicy{RoundRobin, LeastRequest, Random, ConsistentHash}))
		}
		switch {
		case lb.Policy == ConsistentHash && lb.HashKey == "":
			errs = append(errs, field.Required(lp.Child("hashKey"), "required with policy CONSISTENT_HASH"))
		case lb.Policy != ConsistentHash && lb.HashKey != "":
			errs = append(errs, field.Forbidden(lp.Child("hashKey"), "only allowed with policy CONSISTENT_HASH"))
		case len(lb.HashKey) > maxHashKeyLen:
			errs = append(errs, field.TooLong(lp.Child("hashKey"), "", maxHashKeyLen))
		}
	}

	if cp := s.ConnectionPool; cp != nil {
		pp := p.Child("connectionPool")
		errs = append(errs, validateMin(cp.MaxConnections, 1, pp.Child("maxConnections"))...)
		errs = append(errs, validateMin(cp.MaxPendingRequests, 1, pp.Child("maxPendingRequests"))...)
		errs = append(errs, validateOptDuration(cp.ConnectTimeout, pp.Child("connectTimeout"))...)
		errs = append(errs, validateOptDuration(cp.IdleTimeout, pp.Child("idleTimeout"))...)
	}

	if od := s.OutlierDetection; od != nil {
		op := p.Child("outlierDetection")
		errs = append(errs, validateMin(od.ConsecutiveErrors, 1, op.Child("consecutiveErrors"))...)
		errs = append(errs, validateOptDuration(od.Interval, op.Child("interval"))...)
		errs = append(errs, validateOptDuration(od.BaseEjectionTime, op.Child("baseEjectionTime"))...)
		errs = append(errs, validateRange(od.MaxEjectionPercent, 0, 100, op.Child("maxEjectionPercent"))...)
	}
	if rc := s.RedisCluster; rc != nil {
		rp := p.Child("redisCluster")
		switch rc.ReadPolicy {
		case "", ReadMaster, ReadPreferMaster, ReadReplica, ReadPreferReplica, ReadAny:
		default:
			errs = append(errs, field.NotSupported(rp.Child("readPolicy"), rc.ReadPolicy,
				[]RedisReadPolicy{ReadMaster, ReadPreferMaster, ReadReplica, ReadPreferReplica, ReadAny}))
		}
		ip := rp.Child("refreshInterval")
		if verrs := validateOptDuration(rc.RefreshInterval, ip); len(verrs) > 0 {
			errs = append(errs, verrs...)
		} else if rc.RefreshInterval != nil {
			if d, _ := time.ParseDuration(string(*rc.RefreshInterval)); d < MinRedisRefresh {
				errs = append(errs, field.Invalid(ip, *rc.RefreshInterval, "must be at least 100ms"))
			}
		}
	}
	errs = append(errs, validateClientTLS(s.TLS, p.Child("tls"))...)
	errs = append(errs, validateListenerTLS(s.ListenerTLS, p.Child("listenerTls"))...)
	errs = append(errs, validateMTLS(s.MTLS, s.ListenerTLS, p.Child("mtls"))...)
	errs = append(errs, ValidateExportTo(s.ExportTo, p.Child("exportTo"))...)
	return errs
}

// MinRedisRefresh is the shortest redisCluster.refreshInterval.
const MinRedisRefresh = 100 * time.Millisecond

// Validate checks a MetaRouter as the API server would, and also that every
// regex compiles.
func (x *MetaRouter) Validate() field.ErrorList {
	errs := validateMeta(&x.ObjectMeta, true)
	s := &x.Spec
	p := field.NewPath("spec")
	errs = append(errs, validateHosts(s.Hosts, p.Child("hosts"))...)

	rp := p.Child("routes")
	if len(s.Routes) > maxRoutes {
		errs = append(errs, field.TooMany(rp, len(s.Routes), maxRoutes))
	}
	seen := make(map[string]bool, len(s.Routes))
	for i := range s.Routes {
		errs = append(errs, validateRoute(&s.Routes[i], rp.Index(i))...)
		if name := s.Routes[i].Name; name != "" && seen[name] {
			errs = append(errs, field.Duplicate(rp.Index(i).Child("name"), name))
		}
		seen[s.Routes[i].Name] = true
	}

	if rl := s.LocalRateLimit; rl != nil {
		lp := p.Child("localRateLimit")
		if rl.TokenBucket == nil && len(rl.Conditions) == 0 {
			errs = append(errs, field.Required(lp, "set tokenBucket, conditions or both"))
		}
		if rl.TokenBucket != nil {
			errs = append(errs, validateTokenBucket(rl.TokenBucket, lp.Child("tokenBucket"))...)
		}
		cp := lp.Child("conditions")
		if len(rl.Conditions) > maxConditions {
			errs = append(errs, field.TooMany(cp, len(rl.Conditions), maxConditions))
		}
		for i := range rl.Conditions {
			c := &rl.Conditions[i]
			errs = append(errs, validateMatch(&c.Match, cp.Index(i).Child("match"))...)
			errs = append(errs, validateTokenBucket(&c.TokenBucket, cp.Index(i).Child("tokenBucket"))...)
		}
	}
	if s.GlobalRateLimit != nil {
		errs = append(errs, validateGlobalRateLimit(s.GlobalRateLimit, p.Child("globalRateLimit"))...)
	}
	errs = append(errs, ValidateExportTo(s.ExportTo, p.Child("exportTo"))...)
	errs = append(errs, ValidateGateways(s.Gateways, p.Child("gateways"))...)
	return errs
}

func validateRoute(r *MetaRoute, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case r.Name == "":
		errs = append(errs, field.Required(p.Child("name"), ""))
	case len(r.Name) > maxHostLen:
		errs = append(errs, field.TooLong(p.Child("name"), "", maxHostLen))
	}
	errs = append(errs, validateMatch(r.Match, p.Child("match"))...)

	dp := p.Child("route")
	switch {
	case len(r.Route) == 0:
		errs = append(errs, field.Required(dp, "at least one destination"))
	case len(r.Route) > maxRouteDests:
		errs = append(errs, field.TooMany(dp, len(r.Route), maxRouteDests))
	}
	weighted, sum := 0, int32(0)
	for i := range r.Route {
		d := &r.Route[i]
		errs = append(errs, validateDestination(&d.Destination, dp.Index(i).Child("destination"))...)
		errs = append(errs, validateRange(d.Weight, 0, 100, dp.Index(i).Child("weight"))...)
		if d.Weight != nil {
			weighted++
			sum += *d.Weight
		}
	}
	if len(r.Route) > 1 && weighted > 0 {
		switch {
		case weighted < len(r.Route):
			errs = append(errs, field.Invalid(dp, weighted, "weights must be set on every destination or on none"))
		case sum != 100:
			errs = append(errs, field.Invalid(dp, sum, "weights must add up to 100"))
		}
	}

	errs = append(errs, validateOptDuration(r.Timeout, p.Child("timeout"))...)
	if rt := r.Retries; rt != nil {
		rp := p.Child("retries")
		errs = append(errs, validateRange(&rt.Attempts, 0, maxRetryAttempts, rp.Child("attempts"))...)
		errs = append(errs, validateOptDuration(rt.PerTryTimeout, rp.Child("perTryTimeout"))...)
		seen := map[RetryOn]bool{}
		for i, on := range rt.RetryOn {
			op := rp.Child("retryOn").Index(i)
			switch on {
			case RetryOnConnectFailure, RetryOnReset, RetryOnUnavailable:
			default:
				errs = append(errs, field.NotSupported(op, on,
					[]RetryOn{RetryOnConnectFailure, RetryOnReset, RetryOnUnavailable}))
			}
			if seen[on] {
				errs = append(errs, field.Duplicate(op, on))
			}
			seen[on] = true
		}
	}

	if r.Mirror != nil {
		errs = append(errs, validateDestination(r.Mirror, p.Child("mirror"))...)
	}
	if r.MirrorPercentage != nil {
		errs = append(errs, validateRange(r.MirrorPercentage, 0, 100, p.Child("mirrorPercentage"))...)
		if r.Mirror == nil {
			errs = append(errs, field.Required(p.Child("mirror"), "mirrorPercentage needs mirror"))
		}
	}
	if r.MirrorExcludeReads && r.Mirror == nil {
		errs = append(errs, field.Required(p.Child("mirror"), "mirrorExcludeReads needs mirror"))
	}
	errs = append(errs, validateKeyValues(r.RequestMutation, p.Child("requestMutation"))...)
	errs = append(errs, validateKeyValues(r.ResponseMutation, p.Child("responseMutation"))...)
	if f := r.Fault; f != nil {
		errs = append(errs, validateFault(f, p.Child("fault"))...)
	}
	return errs
}

func validateFault(f *Fault, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if f.Delay == nil && f.Abort == nil {
		errs = append(errs, field.Required(p, "set delay, abort or both"))
	}
	if d := f.Delay; d != nil {
		errs = append(errs, validateDuration(d.FixedDelay, p.Child("delay", "fixedDelay"))...)
		errs = append(errs, validateRange(d.Percentage, 0, 100, p.Child("delay", "percentage"))...)
	}
	if a := f.Abort; a != nil {
		errs = append(errs, validateRange(a.Status, 1, 65535, p.Child("abort", "status"))...)
		errs = append(errs, validateRange(a.Percentage, 0, 100, p.Child("abort", "percentage"))...)
	}
	return errs
}

// Validate checks an ApplicationProtocol as the API server would.
func (x *ApplicationProtocol) Validate() field.ErrorList {
	errs := validateMeta(&x.ObjectMeta, false)
	errs = append(errs, validateName(x.Spec.Codec, field.NewPath("spec", "codec"))...)
	return errs
}
