package v1alpha1

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	metamesh "github.com/metamesh/metamesh/crds/v1alpha1"
)

// fromMetamesh converts metamesh's MetaRouter back to Aeraki's. Tests use
// it to prove ToMetamesh loses nothing; it fails on the fields Aeraki
// lacks (timeout, retries).
func fromMetamesh(in *metamesh.MetaRouter) (*MetaRouter, error) {
	var errs field.ErrorList
	p := field.NewPath("spec")
	out := &MetaRouter{
		TypeMeta:   metav1.TypeMeta{APIVersion: SchemeGroupVersion.String(), Kind: metamesh.KindMetaRouter},
		ObjectMeta: *in.ObjectMeta.DeepCopy(),
		Spec:       MetaRouterSpec{ExportTo: in.Spec.ExportTo},
	}
	for _, h := range in.Spec.Hosts {
		out.Spec.Hosts = append(out.Spec.Hosts, string(h))
	}
	for i := range in.Spec.Routes {
		r := &in.Spec.Routes[i]
		rp := p.Child("routes").Index(i)
		if r.Timeout != nil {
			errs = append(errs, field.Forbidden(rp.Child("timeout"), "Aeraki's MetaRouter has no timeout"))
		}
		if r.Retries != nil {
			errs = append(errs, field.Forbidden(rp.Child("retries"), "Aeraki's MetaRouter has no retries"))
		}
		ar := MetaRoute{Name: r.Name}
		if r.Match != nil {
			ar.Match = fromMatch(r.Match)
		}
		for _, d := range r.Route {
			ad := MetaRouteDestination{Destination: fromDestination(&d.Destination)}
			if d.Weight != nil {
				ad.Weight = uint32(*d.Weight)
			}
			ar.Route = append(ar.Route, ad)
		}
		if r.Mirror != nil {
			m := fromDestination(r.Mirror)
			ar.Mirror = &m
		}
		if r.MirrorPercentage != nil {
			ar.MirrorPercentage = &Percent{Value: float64(*r.MirrorPercentage)}
		}
		for _, kv := range r.RequestMutation {
			ar.RequestMutation = append(ar.RequestMutation, KeyValue{Key: kv.Key, Value: kv.Value})
		}
		for _, kv := range r.ResponseMutation {
			ar.ResponseMutation = append(ar.ResponseMutation, KeyValue{Key: kv.Key, Value: kv.Value})
		}
		out.Spec.Routes = append(out.Spec.Routes, ar)
	}
	if rl := in.Spec.LocalRateLimit; rl != nil {
		out.Spec.LocalRateLimit = &LocalRateLimit{}
		if rl.TokenBucket != nil {
			tb := fromTokenBucket(rl.TokenBucket)
			out.Spec.LocalRateLimit.TokenBucket = &tb
		}
		for i := range rl.Conditions {
			c := &rl.Conditions[i]
			out.Spec.LocalRateLimit.Conditions = append(out.Spec.LocalRateLimit.Conditions,
				LocalRateLimitCondition{Match: *fromMatch(&c.Match), TokenBucket: fromTokenBucket(&c.TokenBucket)})
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s/%s: %w", metamesh.KindMetaRouter, in.Name, errs.ToAggregate())
	}
	return out, nil
}

func fromMatch(m *metamesh.Match) *MetaRouteMatch {
	out := &MetaRouteMatch{}
	if m.Attributes != nil {
		out.Attributes = make(map[string]StringMatch, len(m.Attributes))
	}
	for k, v := range m.Attributes {
		out.Attributes[k] = StringMatch{Exact: v.Exact, Prefix: v.Prefix, Regex: v.Regex}
	}
	return out
}

func fromDestination(d *metamesh.Destination) Destination {
	out := Destination{Host: string(d.Host), Subset: string(d.Subset)}
	if d.Port != nil {
		out.Port = &PortSelector{Number: uint32(*d.Port)}
	}
	return out
}

func fromTokenBucket(b *metamesh.TokenBucket) TokenBucket {
	out := TokenBucket{MaxTokens: uint32(b.MaxTokens), FillInterval: string(b.FillInterval)}
	if b.TokensPerFill != nil {
		n := uint32(*b.TokensPerFill)
		out.TokensPerFill = &n
	}
	return out
}
