package v1alpha1

import (
	"fmt"
	"math"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	metamesh "github.com/metamesh/metamesh/crds/v1alpha1"
)

// codecPrefix is how Aeraki names its codec extensions
// (aeraki.meta_protocol.codec.dubbo); metamesh names codecs by protocol.
const codecPrefix = "aeraki.meta_protocol.codec."

// ToMetamesh converts an Aeraki MetaRouter to metamesh's. The error names
// every field metamesh can't honour: fractional or out-of-range numbers.
// exportTo, gateways and globalRateLimit are metamesh's (the same values:
// see docs/scoping.md, docs/gateways.md and docs/rate-limiting.md). The
// result is not validated; call its Validate.
func (r *MetaRouter) ToMetamesh() (*metamesh.MetaRouter, error) {
	var errs field.ErrorList
	p := field.NewPath("spec")
	s := &r.Spec
	out := &metamesh.MetaRouter{
		TypeMeta:   metav1.TypeMeta{APIVersion: metamesh.SchemeGroupVersion.String(), Kind: metamesh.KindMetaRouter},
		ObjectMeta: *r.ObjectMeta.DeepCopy(),
		Spec: metamesh.MetaRouterSpec{
			ExportTo: metamesh.ExportTo(slices.Clone(s.ExportTo)),
			Gateways: metamesh.Gateways(slices.Clone(s.Gateways)),
		},
	}
	for _, h := range s.Hosts {
		out.Spec.Hosts = append(out.Spec.Hosts, metamesh.Host(h))
	}
	for i := range s.Routes {
		route, rerrs := s.Routes[i].toMetamesh(i, p.Child("routes").Index(i))
		errs = append(errs, rerrs...)
		out.Spec.Routes = append(out.Spec.Routes, route)
	}
	if rl := s.LocalRateLimit; rl != nil {
		lp := p.Child("localRateLimit")
		out.Spec.LocalRateLimit = &metamesh.LocalRateLimit{}
		if rl.TokenBucket != nil {
			tb, terrs := rl.TokenBucket.toMetamesh(lp.Child("tokenBucket"))
			errs = append(errs, terrs...)
			out.Spec.LocalRateLimit.TokenBucket = &tb
		}
		for i := range rl.Conditions {
			c := &rl.Conditions[i]
			tb, terrs := c.TokenBucket.toMetamesh(lp.Child("conditions").Index(i).Child("tokenBucket"))
			errs = append(errs, terrs...)
			out.Spec.LocalRateLimit.Conditions = append(out.Spec.LocalRateLimit.Conditions,
				metamesh.RateLimitCondition{Match: *c.Match.toMetamesh(), TokenBucket: tb})
		}
	}
	if g := s.GlobalRateLimit; g != nil {
		out.Spec.GlobalRateLimit = g.toMetamesh()
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s/%s: %w", metamesh.KindMetaRouter, r.Name, errs.ToAggregate())
	}
	return out, nil
}

func (m *MetaRoute) toMetamesh(i int, p *field.Path) (metamesh.MetaRoute, field.ErrorList) {
	var errs field.ErrorList
	out := metamesh.MetaRoute{
		Name:             m.Name,
		RequestMutation:  convertKeyValues(m.RequestMutation),
		ResponseMutation: convertKeyValues(m.ResponseMutation),
	}
	if out.Name == "" {
		// Aeraki's names are optional; metamesh labels metrics with them.
		out.Name = fmt.Sprintf("route-%d", i)
	}
	if m.Match != nil {
		out.Match = m.Match.toMetamesh()
	}
	// Aeraki's weight is a proto3 uint32: 0 is "unset", so a route whose
	// weights are all 0 has none, which metamesh splits evenly.
	weighted := false
	for _, d := range m.Route {
		weighted = weighted || d.Weight != 0
	}
	for j := range m.Route {
		d := &m.Route[j]
		dp := p.Child("route").Index(j)
		dst, derrs := d.Destination.toMetamesh(dp.Child("destination"))
		errs = append(errs, derrs...)
		wd := metamesh.WeightedDestination{Destination: dst}
		if weighted {
			if d.Weight > 100 {
				errs = append(errs, field.Invalid(dp.Child("weight"), d.Weight, "must be between 0 and 100"))
			}
			w := int32(min(d.Weight, 100))
			wd.Weight = &w
		}
		out.Route = append(out.Route, wd)
	}
	if m.Mirror != nil {
		dst, derrs := m.Mirror.toMetamesh(p.Child("mirror"))
		errs = append(errs, derrs...)
		out.Mirror = &dst
	}
	if mp := m.MirrorPercentage; mp != nil {
		v := mp.Value
		if v < 0 || v > 100 || v != math.Trunc(v) {
			errs = append(errs, field.Invalid(p.Child("mirrorPercentage", "value"), v, "metamesh mirrors whole percentages from 0 to 100"))
		} else {
			pct := int32(v)
			out.MirrorPercentage = &pct
		}
	}
	return out, errs
}

func (m *MetaRouteMatch) toMetamesh() *metamesh.Match {
	out := &metamesh.Match{}
	if m.Attributes != nil {
		out.Attributes = make(map[string]metamesh.StringMatch, len(m.Attributes))
	}
	for k, v := range m.Attributes {
		out.Attributes[k] = metamesh.StringMatch{Exact: v.Exact, Prefix: v.Prefix, Regex: v.Regex}
	}
	return out
}

// toMetamesh copies the fields, which are the same; an empty match (or
// none) matches every request in both.
func (g *GlobalRateLimit) toMetamesh() *metamesh.GlobalRateLimit {
	out := &metamesh.GlobalRateLimit{
		Domain:           g.Domain,
		RateLimitService: g.RateLimitService,
		DenyOnFail:       g.DenyOnFail,
	}
	if len(g.Match.Attributes) > 0 {
		out.Match = g.Match.toMetamesh()
	}
	if g.RequestTimeout != "" {
		d := metamesh.Duration(g.RequestTimeout)
		out.RequestTimeout = &d
	}
	for _, d := range g.Descriptors {
		out.Descriptors = append(out.Descriptors, metamesh.RateLimitDescriptor{Property: d.Property, DescriptorKey: d.DescriptorKey})
	}
	return out
}

func (d *Destination) toMetamesh(p *field.Path) (metamesh.Destination, field.ErrorList) {
	out := metamesh.Destination{Host: metamesh.Host(d.Host), Subset: metamesh.Name(d.Subset)}
	if d.Port != nil && d.Port.Number != 0 {
		if d.Port.Number > 65535 {
			return out, field.ErrorList{field.Invalid(p.Child("port", "number"), d.Port.Number, "must be between 1 and 65535")}
		}
		port := metamesh.PortNumber(d.Port.Number)
		out.Port = &port
	}
	return out, nil
}

func (b *TokenBucket) toMetamesh(p *field.Path) (metamesh.TokenBucket, field.ErrorList) {
	var errs field.ErrorList
	out := metamesh.TokenBucket{FillInterval: metamesh.Duration(b.FillInterval)}
	if b.MaxTokens > math.MaxInt32 {
		errs = append(errs, field.Invalid(p.Child("maxTokens"), b.MaxTokens, "must be at most 2147483647"))
	} else {
		out.MaxTokens = int32(b.MaxTokens)
	}
	if b.TokensPerFill != nil {
		if *b.TokensPerFill > math.MaxInt32 {
			errs = append(errs, field.Invalid(p.Child("tokensPerFill"), *b.TokensPerFill, "must be at most 2147483647"))
		} else {
			n := int32(*b.TokensPerFill)
			out.TokensPerFill = &n
		}
	}
	return out, errs
}

func convertKeyValues(kvs []KeyValue) []metamesh.KeyValue {
	if kvs == nil {
		return nil
	}
	out := make([]metamesh.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = metamesh.KeyValue{Key: kv.Key, Value: kv.Value}
	}
	return out
}

// ToMetamesh converts an Aeraki ApplicationProtocol to metamesh's, which is
// cluster-scoped and named by the protocol: the name is spec.protocol (else
// metadata.name), the namespace is dropped, and an Aeraki codec extension
// name (aeraki.meta_protocol.codec.X) becomes the codec X.
func (a *ApplicationProtocol) ToMetamesh() (*metamesh.ApplicationProtocol, error) {
	name := a.Spec.Protocol
	if name == "" {
		name = a.Name
	}
	codec := strings.TrimPrefix(a.Spec.Codec, codecPrefix)
	if codec == "" {
		codec = name
	}
	meta := a.ObjectMeta.DeepCopy()
	meta.Name, meta.Namespace = name, ""
	return &metamesh.ApplicationProtocol{
		TypeMeta:   metav1.TypeMeta{APIVersion: metamesh.SchemeGroupVersion.String(), Kind: metamesh.KindApplicationProtocol},
		ObjectMeta: *meta,
		Spec:       metamesh.ApplicationProtocolSpec{Codec: metamesh.Name(codec)},
	}, nil
}
