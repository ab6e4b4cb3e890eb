package translate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/metamesh/metamesh/crds/v1alpha1"
	"github.com/metamesh/metamesh/crds/xdsapi"
)

// limitService is the cluster serving a MetaRouter's global rate limit:
// a port (proxied or plain) of a ServiceEntry host, all its endpoints or
// a subset's.
type limitService struct {
	name   string // ClusterName(port, subset, host)
	svc    *service
	port   v1alpha1.ServicePort
	labels map[string]string // the subset's
}

// resolveLimit resolves mr's globalRateLimit.rateLimitService to a
// ServiceEntry host, port and subset. One that resolves to none refuses
// the whole MetaRouter (file mode refuses the config, as for a conflict),
// since a limit with no service is one the proxies could not apply.
func (t *translation) resolveLimit(mr *v1alpha1.MetaRouter, key string) bool {
	g := mr.Spec.GlobalRateLimit
	if g == nil {
		return true
	}
	const path = "spec.globalRateLimit.rateLimitService"
	refuse := func(reason, msg string) bool {
		t.unresolved(key, reason, path+": "+msg)
		t.reject(key, reason, path+": "+msg)
		t.conflicts = append(t.conflicts, Conflict{Key: key, Field: path, Reason: msg})
		return false
	}
	ref, ok := v1alpha1.ParseRateLimitService(g.RateLimitService)
	if !ok { // validation refuses it first
		return refuse(v1alpha1.ReasonInvalid, fmt.Sprintf("%q is neither outbound|PORT|SUBSET|HOST nor HOST:PORT", g.RateLimitService))
	}
	svc, ok := t.services[ref.Host]
	if !ok {
		return refuse(v1alpha1.ReasonUnknownHost, fmt.Sprintf("no ServiceEntry defines %s", ref.Host))
	}
	ports := slices.Concat(svc.ports, svc.plain)
	i := slices.IndexFunc(ports, func(p v1alpha1.ServicePort) bool { return int32(p.Number) == ref.Port })
	if i < 0 {
		return refuse(v1alpha1.ReasonUnknownHost, fmt.Sprintf("ServiceEntry %s/%s gives %s no port %d (its ports: %s)",
			svc.entry.Namespace, svc.entry.Name, ref.Host, ref.Port, portList(ports)))
	}
	ls := &limitService{name: ClusterName(ref.Port, ref.Subset, ref.Host), svc: svc, port: ports[i]}
	if ref.Subset != "" {
		found := false
		for _, p := range svc.policies {
			if ls.labels, found = subsetLabels(&service{policy: p.obj}, ref.Subset); found {
				break
			}
		}
		if !found {
			return refuse(v1alpha1.ReasonUnknownSubset, fmt.Sprintf("%s has no subset %q (define it in a DestinationPolicy)", ref.Host, ref.Subset))
		}
	}
	mapSet(&t.limits, mr, ls)
	return true
}

func portList(ports []v1alpha1.ServicePort) string {
	var b strings.Builder
	for i, p := range ports {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", p.Number, p.Protocol)
	}
	return b.String()
}

// globalRateLimit is mr's global limit as the proxy takes it, naming the
// cluster resolveLimit found.
func (t *translation) globalRateLimit(mr *v1alpha1.MetaRouter) *xdsapi.GlobalRateLimit {
	g := mr.Spec.GlobalRateLimit
	out := &xdsapi.GlobalRateLimit{Domain: g.Domain, RateLimitService: t.limits[mr].name, RequestTimeout: duration(g.RequestTimeout), DenyOnFail: g.DenyOnFail}
	if g.Match != nil {
		out.Match = attributeMatches(g.Match.Attributes)
	}
	for _, d := range g.Descriptors {
		out.Descriptors = append(out.Descriptors, &xdsapi.RateLimitDescriptorEntry{Property: d.Property, DescriptorKey: d.DescriptorKey})
	}
	return out
}

// addLimitClusters adds to res, the resources of selection s, the
// cluster of each global limit in force whose service s doesn't see (or
// sees with a policy lacking the subset): a proxy refuses a limit whose
// cluster it lacks.
func (t *translation) addLimitClusters(s *selection, res *xdsapi.Resources) {
	var need []*limitService
	for _, svc := range t.limited {
		if ls := t.limits[svc.router]; s.seen[svc.idx] && ls != nil && !slices.Contains(need, ls) {
			need = append(need, ls)
		}
	}
	if len(need) == 0 {
		return
	}
	have := make(map[string]bool, len(res.Clusters))
	for _, c := range res.Clusters {
		have[c.Name] = true
	}
	slices.SortFunc(need, func(a, b *limitService) int { return strings.Compare(a.name, b.name) })
	for _, ls := range need {
		if have[ls.name] {
			continue
		}
		have[ls.name] = true
		res.Clusters = append(res.Clusters, t.cluster(ls.svc, ls.name))
		res.Endpoints = append(res.Endpoints, assignment(ls.svc, lbEndpoints(ls.svc, ls.port), ls.name, ls.labels))
	}
}
